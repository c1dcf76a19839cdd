/**
 * Brings up the project's engine (scripts/engine.sh up) once for the whole run, hands its
 * environment to the test workers, and removes every container the tests left behind. Generates
 * the /docs renderer module first (scripts/docs-renderer.mjs).
 */
import { execFileSync } from 'node:child_process'
import { TEST_LABEL } from './labels.ts'

export default async function setup() {
  // The /docs renderer module that src/docs/routes.ts imports (generated, not committed).
  execFileSync(process.execPath, ['scripts/docs-renderer.mjs'], { stdio: 'inherit' })
  const output = execFileSync('bash', ['scripts/engine.sh', 'up'], {
    env: { ...process.env, DOCKGATE_PRIVATE_ENGINE: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  for (const line of output.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (match) process.env[match[1]!] = match[2]!.replace(/^'(.*)'$/, '$1')
  }
  const run = `${process.pid}-${Date.now().toString(36)}`
  process.env.DOCKGATE_TEST_RUN = run
  removeStaleTestContainers()
  return () => removeContainers(`label=${TEST_LABEL}=${run}`)
}

const docker = (...args: string[]) =>
  execFileSync('docker', ['-H', process.env.DOCKER_HOST ?? '', ...args], {
    encoding: 'utf8',
  }).trim()

function removeContainers(...filters: string[]) {
  const ids = docker('ps', '-aq', ...filters.flatMap((f) => ['--filter', f]))
  if (ids) docker('rm', '-f', ...ids.split('\n'))
}

/** Left behind by runs that died (a run removes its own at the end): older than an hour. */
function removeStaleTestContainers() {
  const lines = docker(
    'ps',
    '-a',
    '--filter',
    `label=${TEST_LABEL}`,
    '--format',
    '{{.ID}} {{.CreatedAt}}',
  )
  const hourAgo = Date.now() - 3_600_000
  const stale = lines
    .split('\n')
    .filter(Boolean)
    .filter((line) => Date.parse(`${line.split(' ').slice(1, 3).join('T')}Z`) < hourAgo)
    .map((line) => line.split(' ')[0]!)
  if (stale.length > 0) docker('rm', '-f', ...stale)
}
