import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { testEngineEnv } from '../support/engine.ts'
import { testGateway } from '../support/gateway.ts'

const env = testEngineEnv()

/** The same engine through each wire; CI always has all three (scripts/engine.sh owns them). */
const wires = [
  ['unix socket', { DOCKER_HOST: env.dockerHost }],
  ['TCP', { DOCKER_HOST: env.tcpHost }],
  [
    'TLS with client certificates',
    { DOCKER_HOST: env.tlsHost, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: env.tlsCertPath },
  ],
] as const

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
