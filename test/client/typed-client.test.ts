import { execFileSync } from 'node:child_process'
import { beforeAll, describe, expect, it } from 'vitest'
import { testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

let gw: TestGateway

interface ExampleModule {
  dockgateClient(
    baseUrl: string,
    token: string,
    fetchImpl: (url: string, init?: RequestInit) => Promise<Response>,
  ): {
    createAndStart(body: object): Promise<{ id: string; state: { startedAt: string | null } }>
    running(label: string): Promise<unknown[]>
    wait(id: string): Promise<{ exitCode: number }>
    followLogs(id: string): Promise<{ lines: string[]; exitCode: number | null }>
    logs(id: string): Promise<{ lines: { text: string }[] }>
    remove(id: string): Promise<undefined>
  }
}

beforeAll(async () => {
  execFileSync(
    'npx',
    ['openapi-typescript', 'openapi/openapi.json', '-o', 'test/generated/dockgate.ts'],
    {
      stdio: 'pipe',
    },
  )
  gw = await testGateway()
}, 120_000)

describe('a client typed from the committed OpenAPI document', () => {
  it('type-checks, and its misuse does not', () => {
    let output = ''
    try {
      execFileSync('npx', ['tsc', '-p', 'test/client/tsconfig.json'], {
        encoding: 'utf8',
        stdio: 'pipe',
      })
    } catch (error) {
      output = String((error as { stdout: string }).stdout)
    }
    expect(output).toBe('')
  })

  it('runs against the gateway', async () => {
    // Imported by a computed path: the project's own tsc run must not need the generated types.
    const example = './example-client.ts'
    const { dockgateClient } = (await import(example)) as ExampleModule
    const fetchViaApp = async (url: string, init?: RequestInit) => gw.app.request(url, init)
    const client = dockgateClient('http://gateway', tokenOf('admin'), fetchViaApp)
    const run = uniqueName('typed')
    const created = await client.createAndStart({
      image: testEngineEnv().image,
      name: run,
      cmd: ['sh', '-c', 'echo typed; sleep 2'],
      labels: { [TEST_LABEL]: TEST_RUN, run },
    })
    expect(await client.running(`run=${run}`)).toEqual([
      { id: created.id, name: run, startedAt: created.state.startedAt },
    ])
    expect(await client.wait(created.id)).toEqual({ exitCode: 0 })
    expect((await client.logs(created.id)).lines.map((l) => l.text)).toEqual(['typed'])
    expect(await client.followLogs(created.id)).toEqual({ lines: ['typed'], exitCode: 0 })
    await client.remove(created.id)
    await expect(client.logs(created.id)).rejects.toThrow(/404 urn:dockgate:problem:not-found/)
  })
})
