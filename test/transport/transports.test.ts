import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { PushedByteStream } from '../../src/streams/pushed.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { engineWires, testEngineEnv } from '../support/engine.ts'
import { testGateway } from '../support/gateway.ts'

const env = testEngineEnv()

/** The same engine through each wire; CI always has all three (scripts/engine.sh owns them). */
const wires = engineWires(env)

describe.each(wires)('the %s transport', (_name, dockerEnv) => {
  it('reaches the engine through the gateway', async () => {
    expect(dockerEnv.DOCKER_HOST, 'scripts/engine.sh up must provide this wire').toBeDefined()
    const gw = await testGateway({ transport: createNodeTransport(engineTargetFromEnv(dockerEnv)) })
    const ready = await gw.json('/readyz', { role: null })
    expect(ready.body).toMatchObject({ status: 'ready', engineApiVersion: '1.41' })
    const version = await gw.json('/v1/system/version')
    expect(version.body.negotiatedApiVersion).toBe('1.41')
    const images = await gw.json('/v1/images')
    expect(images.body.images.some((i: { tags: string[] }) => i.tags.includes(env.image))).toBe(
      true,
    )
  })

  // A held call whose body is pushed is read off a connection of its own (`requestPushed`), any
  // other through undici (src/transport/node.ts): both answer the same.
  it.each([
    ['pooled', { push: true }],
    ['held', { held: true, push: true }],
  ])(
    'pushes the body of a %s call that asks for it: the same bytes, read or pushed, and the same refusals',
    async (_kind, options) => {
      const transport = createNodeTransport(engineTargetFromEnv(dockerEnv))
      const client = new EngineClient(transport)
      try {
        const path = `/images/${encodeURIComponent(env.image)}/json`
        const fetched = await (await client.request('GET', path)).text()
        const response = await client.request('GET', path, options)
        const body = response.body
        expect(body).toBeInstanceOf(PushedByteStream)
        const decoder = new TextDecoder()
        let pushed = ''
        const ended = new Promise<unknown>((resolve) => {
          ;(body as PushedByteStream).pushTo({
            chunk: (bytes) => {
              pushed += decoder.decode(bytes, { stream: true })
            },
            end: resolve,
          })
        })
        expect(await ended).toBeUndefined()
        expect(pushed).toBe(fetched)
        expect(response.headers.get('content-type')).toBe('application/json')
        // Read as any body, by a caller that does not push.
        expect(await client.json('GET', path, options)).toEqual(JSON.parse(fetched))
        await expect(
          client.json('GET', '/containers/dockgate-no-such-container/json', options),
        ).rejects.toMatchObject({ status: 404 })
      } finally {
        await transport.close()
      }
    },
  )

  it('ends a pushed body that the caller aborts, and refuses a call aborted before it starts', async () => {
    const transport = createNodeTransport(engineTargetFromEnv(dockerEnv))
    const client = new EngineClient(transport)
    try {
      const abort = new AbortController()
      const options = { held: true, push: true, timeoutMs: 0, signal: abort.signal }
      const response = await client.request('GET', '/events', options)
      const ended = new Promise<unknown>((resolve) => {
        ;(response.body as PushedByteStream).pushTo({ chunk: () => {}, end: resolve })
      })
      abort.abort(new Error('left'))
      expect(await ended).toBeInstanceOf(Error)
      await expect(client.request('GET', '/events', options)).rejects.toThrow()
    } finally {
      await transport.close()
    }
  })
})

describe('TLS', () => {
  it('cannot reach the engine with a client certificate the engine does not trust', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dockgate-untrusted-'))
    copyFileSync(join(env.tlsCertPath!, 'ca.pem'), join(dir, 'ca.pem'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=intruder',
      ],
      { stdio: 'ignore' },
    )
    const target = engineTargetFromEnv({
      DOCKER_HOST: env.tlsHost,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: dir,
    })
    const gw = await testGateway({ transport: createNodeTransport(target) })
    const { status, body, response } = await gw.json('/v1/system/version')
    expect(status).toBe(503)
    expect(body.type).toBe('urn:dockgate:problem:engine-unavailable')
    expect(response.headers.get('retry-after')).toBe('5')
    rmSync(dir, { recursive: true })
  })

  it('answers 503 when the other side speaks no TLS', async () => {
    // The plain TCP port: the handshake fails as it would against a misconfigured engine.
    const target = engineTargetFromEnv({
      DOCKER_HOST: env.tcpHost,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: env.tlsCertPath,
    })
    const gw = await testGateway({ transport: createNodeTransport(target) })
    const { status, response } = await gw.json('/readyz', { role: null })
    expect(status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
  })
})
