/** The main setup on this suite's own engine, which is stopped once its containers are removed. */
import { execFileSync } from 'node:child_process'
import setup from '../support/global-setup.ts'

export default async function restartSuiteSetup() {
  const teardown = await setup()
  return async () => {
    await teardown()
    execFileSync('bash', ['scripts/engine.sh', 'down'], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
}
