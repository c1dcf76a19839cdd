/**
 * Brings up the project's engine (scripts/engine.sh up) once for the whole run, hands its
 * environment to the test workers, and removes every container the tests left behind.
 */
import { execFileSync } from 'node:child_process'
import { TEST_LABEL } from './labels.ts'

export default async function setup() {
  const output = execFileSync('bash', ['scripts/engine.sh', 'up'], {
    env: { ...process.env, DOCKGATE_PRIVATE_ENGINE: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  for (const line of output.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (match) process.env[match[1]!] = match[2]!.replace(/^'(.*)'$/, '$1')
  }
  await removeTestContainers()
  return removeTestContainers
}

async function removeTestContainers() {
  const host = process.env.DOCKER_HOST ?? ''
  const docker = (...args: string[]) =>
    execFileSync('docker', ['-H', host, ...args], { encoding: 'utf8' }).trim()
  const ids = docker('ps', '-aq', '--filter', `label=${TEST_LABEL}`)
  if (ids) docker('rm', '-f', ...ids.split('\n'))
}
