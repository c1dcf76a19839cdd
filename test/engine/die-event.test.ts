/**
 * A run's `die` event read back from the real engine's ring, also when the gateway's clock and
 * the engine's disagree. The engine runs on this machine, so its clock is the tests' own: a
 * gateway whose clock is behind the engine's (a remote engine over TCP/TLS) is made here by
 * setting the gateway's `Date.now` back, a mock of the one fault the real parts cannot show.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { inspectContainer } from '../../src/engine/containers.ts'
import { dieOfRun } from '../../src/engine/die-event.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, runDirect } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const engine = new EngineClient(createNodeTransport(engineTargetFromEnv(process.env)))
afterAll(() => engine.transport.close())
afterEach(() => vi.restoreAllMocks())

const labels = { [TEST_LABEL]: TEST_RUN }
const never = new AbortController().signal

/** A run of `sh -c cmd`, over: its inspect while it ran (the follow's), and once it stopped. */
async function ranAndStopped(cmd: string) {
  const id = await runDirect({ name: uniqueName('die'), cmd: ['sh', '-c', cmd], labels })
  const stopped = await inspectContainer(engine, id)
  return { id, stopped }
}

/** The gateway's clock `ms` behind the engine's (mock: the two share this machine's clock). */
function gatewayClockBehindBy(ms: number) {
  const now = Date.now.bind(Date)
  vi.spyOn(Date, 'now').mockImplementation(() => now() - ms)
}

describe('dieOfRun', () => {
  it("finds a stopped run's exit code", async () => {
    const { stopped } = await ranAndStopped('exit 3')

    const died = await dieOfRun(engine, stopped, never)

    expect(died?.exitCode).toBe(3)
  })

  it("finds it by the run's own end when the gateway's clock is behind the engine's", async () => {
    const { stopped } = await ranAndStopped('exit 5')
    gatewayClockBehindBy(10_000)

    const died = await dieOfRun(engine, stopped, never, stopped.State.FinishedAt)

    expect(died?.exitCode).toBe(5)
  })

  it("answers none, not the engine's 400, for a removed run when the gateway's clock is far behind", async () => {
    // It died a second after its start: past what a window ending at its start reads.
    const { id, stopped } = await ranAndStopped('sleep 1; exit 7')
    expect((await direct(`/containers/${id}`, { method: 'DELETE' })).status).toBe(204)
    // Behind by more than the run lasted: the gateway's "now" is before the run's start, and a
    // window ending there is one the engine refuses ("`since` time … cannot be after `until`").
    gatewayClockBehindBy(60_000)

    const died = await dieOfRun(engine, stopped, never)

    expect(died).toBeUndefined()
  })
})
