/**
 * The Deno entry (`src/deno.ts`, as `scripts/deno-start.sh` runs it) against real engines: every
 * engine of its config over its own transport, the second engine over TLS with client
 * certificates (Deno's own HTTP client), one that is gone answering 503 only on its own routes.
 */
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../src/auth/tokens.ts'
import { testEngineB } from './support/engine.ts'
import { type SpawnedGateway, scratchDir, spawnGateway } from './support/reliability.ts'

const TOKEN = 'dgt_deno-engines-test-token'
let dir: string
let gateway: SpawnedGateway

beforeAll(async () => {
  dir = scratchDir('dockgate-deno-engines')
  const b = testEngineB()
  const config = {
    tokens: [
      {
        name: 'ops',
        hash: await hashToken(TOKEN),
        scopes: ['admin'],
        policy: { engines: ['*'] },
      },
    ],
    engines: {
      b: { host: b.tlsHost, tlsVerify: true, certPath: b.certPath },
      gone: { host: `unix://${dir}/no-engine.sock` },
    },
  }
  gateway = await spawnGateway({ dir, config, runtime: 'deno' })
}, 120_000)

afterAll(() => {
  gateway?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const call = (path: string) =>
  fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })

describe('the Deno entry with several engines', () => {
  it('reaches each over its own transport: the Unix socket, TLS with client certificates', async () => {
    const list = await call('/v1/engines')
    expect(list.status).toBe(200)
    const { engines } = (await list.json()) as {
      engines: { name: string; reachable: boolean; apiVersion: string | null }[]
    }
    expect(engines.map((e) => [e.name, e.reachable, e.apiVersion])).toEqual([
      ['b', true, '1.41'],
      ['default', true, '1.41'],
      ['gone', false, null],
    ])
    const onB = await call('/v1/engines/b/system/version')
    expect(onB.status).toBe(200)
    expect(((await onB.json()) as { negotiatedApiVersion: string }).negotiatedApiVersion).toBe(
      '1.41',
    )
  })

  it('answers 503 with Retry-After on the engine that is gone, and only there', async () => {
    const gone = await call('/v1/engines/gone/containers')
    expect(gone.status).toBe(503)
    expect(gone.headers.get('retry-after')).toBe('5')
    expect(gone.headers.get('content-type')).toBe('application/problem+json')
    expect((await call('/v1/engines/b/containers')).status).toBe(200)
    expect((await call('/v1/containers')).status).toBe(200)
  })
})
