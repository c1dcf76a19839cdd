/** The project's parts (scripts/engine.sh, redis.sh, registry.sh) for a bench phase or tool. */
import { execFileSync } from 'node:child_process'
import { ROOT } from './processes.mjs'

/**
 * `bash scripts/<script> up [args]` with this environment: the `KEY=value` lines it prints. It
 * may install Debian packages the first time; never wait forever.
 */
export function scriptUp(script, env, timeout, args = []) {
  const text = execFileSync('bash', [`scripts/${script}`, 'up', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout,
  })
  return Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  )
}

/**
 * {@link scriptUp}, and a `stop` that brings the part down again only when this started it
 * (`scripts/<script> status` said it was not up before). `args` go to `up`, `status` and
 * `down` alike (`engine.sh`'s `--swarm`: the swarm only, the engine kept).
 */
export function partUp(script, { env = process.env, timeout, args = [] }) {
  const run = (command) =>
    execFileSync('bash', [`scripts/${script}`, command, ...args], {
      cwd: ROOT,
      env,
      stdio: 'ignore',
    })
  let wasUp = true
  try {
    run('status')
  } catch {
    wasUp = false
  }
  const vars = scriptUp(script, env, timeout, args)
  const stop = () => {
    if (!wasUp) run('down')
  }
  return { vars, stop }
}

/** The project's Redis: its URL as `DOCKGATE_STORE` takes it, and {@link partUp}'s `stop`. */
export function projectRedis() {
  const { vars, stop } = partUp('redis.sh', { timeout: 300_000 })
  const url = vars.DOCKGATE_TEST_STORE
  if (!url) throw new Error('scripts/redis.sh up printed no DOCKGATE_TEST_STORE')
  return { url, stop }
}
