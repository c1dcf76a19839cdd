/**
 * The Swarm the tests run against: the project's engine as a manager and a second private
 * dockerd as its worker (`scripts/engine.sh up --swarm`; `npm test` brings it up).
 */
import { afterAll } from 'vitest'
import { direct } from './engine.ts'
import { uniqueName } from './gateway.ts'
import { TEST_LABEL, TEST_RUN } from './labels.ts'

export function workerHost(): string {
  const host = process.env.DOCKGATE_TEST_WORKER_HOST
  if (!host) {
    throw new Error(
      'These tests need the swarm: run `DOCKGATE_PRIVATE_ENGINE=1 bash scripts/engine.sh up --swarm` (npm test does)',
    )
  }
  return host
}

/** The names this test file gave its services (each file has its own module instance). */
const named = new Set<string>()

/** A service name unique to this run (service names allow no dots), removed after the file. */
export const serviceName = (prefix: string) => {
  const name = uniqueName(prefix).replaceAll('.', '-')
  named.add(name)
  return name
}

/**
 * Removes the services this file named once its tests are done (not every service of the run:
 * files run in parallel), and any of the run's that a dead run left behind is the next run's.
 */
export function removeServicesAfterAll(): void {
  afterAll(async () => {
    for (const name of named) await direct(`/services/${name}`, { method: 'DELETE' })
  })
}

/** The labels every test service carries, as containers do. */
export const TEST_SERVICE_LABELS = { [TEST_LABEL]: TEST_RUN }

export interface EngineTaskRecord {
  ID: string
  NodeID: string
  ServiceID: string
  Slot: number
  Status: { State: string }
  DesiredState: string
}

/** The engine's tasks of a service. */
export async function engineTasks(serviceId: string): Promise<EngineTaskRecord[]> {
  const filters = encodeURIComponent(JSON.stringify({ service: [serviceId] }))
  return (await direct(`/tasks?filters=${filters}`)).json() as EngineTaskRecord[]
}

/** Waits until `count` tasks of the service run; answers them. */
export async function runningTasks(serviceId: string, count: number, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const running = (await engineTasks(serviceId)).filter(
      (t) => t.Status.State === 'running' && t.DesiredState === 'running',
    )
    if (running.length === count) return running
    if (Date.now() > deadline) {
      throw new Error(`${running.length} of ${count} tasks running after ${timeoutMs} ms`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
