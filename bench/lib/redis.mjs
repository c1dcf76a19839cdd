/** The project's Redis (scripts/redis.sh) for a bench phase or tool. */
import { execFileSync } from 'node:child_process'
import { ROOT } from './processes.mjs'

/**
 * Starts the project's Redis when it is not up; answers its URL as `DOCKGATE_STORE` takes it, and
 * a `stop` that stops it again only when this started it.
 */
export function projectRedis() {
  let wasUp = true
  try {
    execFileSync('bash', ['scripts/redis.sh', 'status'], { cwd: ROOT, stdio: 'ignore' })
  } catch {
    wasUp = false
  }
  const text = execFileSync('bash', ['scripts/redis.sh', 'up'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = /DOCKGATE_TEST_STORE=(\S+)/.exec(text)?.[1]
  if (!url) throw new Error(`scripts/redis.sh up printed no DOCKGATE_TEST_STORE:\n${text}`)
  return {
    url,
    stop: () => {
      if (!wasUp) execFileSync('bash', ['scripts/redis.sh', 'down'], { cwd: ROOT, stdio: 'ignore' })
    },
  }
}
