/**
 * A cluster of its own for a test file: scripts/cluster.sh with a cluster folder in a fresh
 * temporary directory (so its ports, processes and secrets are this file's, beside any cluster a
 * developer runs), on the suite's engine and Redis. `stop()` ends only what `start()` started.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SCRIPT = new URL('../../scripts/cluster.sh', import.meta.url).pathname
const PREFIX = 'dockgate-cluster-'

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Stops the clusters of test runs that died before their `stop()` (their instances and HAProxy
 * run in sessions of their own and outlive them): those whose owner process is gone.
 */
function stopOrphans() {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX))) {
    const dir = join(tmpdir(), name)
    const ownerFile = join(dir, 'owner')
    if (!existsSync(ownerFile) || alive(Number(readFileSync(ownerFile, 'utf8')))) continue
    try {
      execFileSync('bash', [SCRIPT, 'down'], {
        env: { ...process.env, DOCKGATE_CLUSTER_DIR: join(dir, 'cluster') },
        stdio: 'ignore',
        timeout: 60_000,
      })
    } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface Cluster {
  dir: string
  url: string
  token: string
  /** The instances' own URLs, 1..3 at index 0..2. */
  instances: string[]
  /** Runs `scripts/cluster.sh <args>` on this cluster; answers its stdout. */
  run(...args: string[]): string
  /** Crashes instance `n` (1..3) with `signal`, as a machine that goes away. */
  kill(n: number, signal?: 'KILL' | 'TERM'): void
  /** Starts instance `n` again and waits until HAProxy sends it requests. */
  start(n: number): void
  stop(): void
}

export function parseEnvLines(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (match) env[match[1]!] = match[2]!.replace(/^'(.*)'$/, '$1')
  }
  return env
}

export function startCluster(options: { store?: string; config?: string } = {}): Cluster {
  stopOrphans()
  const dir = mkdtempSync(join(tmpdir(), PREFIX))
  writeFileSync(join(dir, 'owner'), String(process.pid))
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKGATE_CLUSTER_DIR: join(dir, 'cluster') }
  // The suite's Redis (scripts/test.sh starts it); otherwise cluster.sh brings one up itself.
  const store = options.store ?? process.env.DOCKGATE_TEST_STORE
  if (store) env.DOCKGATE_STORE = store
  else delete env.DOCKGATE_STORE
  if (options.config) env.DOCKGATE_CONFIG = options.config
  else delete env.DOCKGATE_CONFIG
  const run = (...args: string[]) =>
    execFileSync('bash', [SCRIPT, ...args], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    })
  let up: Record<string, string>
  try {
    up = parseEnvLines(run('up'))
  } catch (error) {
    try {
      run('down')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    throw error
  }
  return {
    dir,
    url: up.DOCKGATE_CLUSTER_URL!,
    token: up.DOCKGATE_CLUSTER_TOKEN!,
    instances: [1, 2, 3].map((n) => up[`DOCKGATE_CLUSTER_INSTANCE_${n}_URL`]!),
    run,
    kill: (n, signal = 'KILL') => void run('kill', String(n), signal),
    start: (n) => void run('start', String(n)),
    stop() {
      try {
        run('down')
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
