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

/**
 * HAProxy as the cluster runs it (its generated haproxy.cfg, `cfgPath`), in front of other
 * servers (`servers`: loopback ports) on a port of its own: e.g. the node:http floor behind the
 * same balancer, which separates HAProxy's share of the cluster's figure from the instances'.
 * `global` and `defaults` lines are added to those sections of the config. Answers `{ port, pids, stop }`.
 */
export async function startBalancer({
  cfgPath,
  servers,
  balancers = 1,
  global = [],
  defaults = [],
  name,
}) {
  const { readFileSync, writeFileSync } = await import('node:fs')
  const { spawn } = await import('node:child_process')
  const { freePort, probe } = await import('./processes.mjs')
  const port = await freePort()
  const lines = readFileSync(cfgPath, 'utf8')
    .split('\n')
    .filter((line) => !/^\s+server /.test(line))
    .map((line) => line.replace(/^(\s+bind 127\.0\.0\.1:)\d+/, `$1${port}`))
  const at = lines.indexOf('global') + 1
  lines.splice(at, 0, ...global.map((g) => `    ${g}`))
  lines.splice(lines.indexOf('defaults') + 1, 0, ...defaults.map((d) => `    ${d}`))
  for (const [i, p] of servers.entries()) lines.push(`    server ${name}-${i + 1} 127.0.0.1:${p}`)
  const path = cfgPath.replace(/haproxy\.cfg$/, `haproxy-${name}.cfg`)
  writeFileSync(path, `${lines.join('\n')}\n`)
  execFileSync('/usr/sbin/haproxy', ['-c', '-q', '-f', path])
  const children = []
  for (let k = 0; k < balancers; k++) {
    children.push(
      spawn('bash', ['-c', `ulimit -n "$(ulimit -Hn)"; exec /usr/sbin/haproxy -db -f "$0"`, path], {
        stdio: 'ignore',
      }),
    )
  }
  const deadline = Date.now() + 10_000
  while ((await probe(`http://127.0.0.1:${port}/healthz`)) !== 200) {
    if (Date.now() > deadline) {
      for (const c of children) c.kill('SIGKILL')
      throw new Error(`HAProxy (${path}) does not answer`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  // Every server in rotation (two good checks, 1 s apart).
  await new Promise((r) => setTimeout(r, 2_500))
  return {
    port,
    pids: children.map((c) => c.pid),
    stop: async () => {
      for (const c of children) c.kill('SIGTERM')
      await Promise.all(
        children.map((c) =>
          c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined,
        ),
      )
    },
  }
}
