/** Which of Node's built-in modules a script loads, for the tests of what loads on demand. */
import { execFileSync } from 'node:child_process'

/**
 * Runs `script` with `node -e` and answers Node's own record of the built-in modules the process
 * loaded (`process.moduleLoadList`: entries such as `NativeModule tls`).
 */
export function builtinsLoadedBy(script: string): string[] {
  const printed = execFileSync(process.execPath, [
    '-e',
    `${script}\nconsole.log(JSON.stringify(process.moduleLoadList))`,
  ])
  return JSON.parse(printed.toString()) as string[]
}
