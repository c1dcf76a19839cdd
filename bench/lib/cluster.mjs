/**
 * The cluster the events-through-the-balancer figure measures: scripts/cluster.sh (three gateway
 * instances behind HAProxy) with a cluster folder of the bench's own, its config (the bench's
 * limits) and its engine. Stopped with `down`, which ends only what `up` started.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './processes.mjs'

const parseEnv = (text) =>
  Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line.trim()))
      .filter(Boolean)
      .map((m) => [m[1], m[2].replace(/^'(.*)'$/, '$1')]),
  )

/** The file-descriptor hard limit: one HAProxy process holds two sockets a client. */
const fdLimit = () => Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }))

/**
 * Starts the cluster for `clients` connections; answers `{ url, port, token, pids, instances,
 * balancers, stop }`. As many HAProxy processes share the port as the open-file limit needs.
 */
export function startCluster({ workDir, dockerHost, configPath, clients }) {
  const perProcess = Math.floor((fdLimit() - 200) / 2)
  const balancers = Math.max(1, Math.ceil((clients + 100) / perProcess))
  const env = {
    ...process.env,
    DOCKGATE_CLUSTER_DIR: join(workDir, 'cluster'),
    DOCKER_HOST: dockerHost,
    DOCKGATE_CONFIG: configPath,
    DOCKGATE_CLUSTER_BALANCERS: String(balancers),
  }
  if (process.env.DOCKGATE_TEST_STORE && !process.env.DOCKGATE_STORE)
    env.DOCKGATE_STORE = process.env.DOCKGATE_TEST_STORE
  const run = (command) =>
    execFileSync('bash', [join(ROOT, 'scripts/cluster.sh'), command], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    })
  let up
  try {
    up = parseEnv(run('up'))
  } catch (error) {
    try {
      run('down')
    } catch {}
    throw new Error(`scripts/cluster.sh up failed: ${error.stderr ?? error.message}`)
  }
  const instances = [1, 2, 3].map((n) => ({
    url: up[`DOCKGATE_CLUSTER_INSTANCE_${n}_URL`],
    pid: Number(up[`DOCKGATE_CLUSTER_INSTANCE_${n}_PID`]),
  }))
  return {
    url: up.DOCKGATE_CLUSTER_URL,
    port: Number(new URL(up.DOCKGATE_CLUSTER_URL).port),
    token: up.DOCKGATE_CLUSTER_TOKEN,
    pids: instances.map((i) => i.pid),
    haproxyPids: up.DOCKGATE_CLUSTER_HAPROXY_PIDS.split(',').map(Number),
    instances,
    balancers,
    stop: () => run('down'),
  }
}
