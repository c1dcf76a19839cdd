import { describe, expect, it } from 'vitest'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'

describe('engineTargetFromEnv', () => {
  it('defaults to the local socket', () => {
    expect(engineTargetFromEnv({})).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock' })
  })

  it('reads unix, tcp and http hosts', () => {
    expect(engineTargetFromEnv({ DOCKER_HOST: 'unix:///run/x.sock' })).toEqual({
      kind: 'unix',
      socketPath: '/run/x.sock',
    })
    expect(engineTargetFromEnv({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toEqual({
      kind: 'tcp',
      origin: 'http://127.0.0.1:2375',
    })
    expect(engineTargetFromEnv({ DOCKER_HOST: 'tcp://localhost' })).toEqual({
      kind: 'tcp',
      origin: 'http://localhost:2375',
    })
    expect(engineTargetFromEnv({ DOCKER_HOST: 'http://[::1]:2375' })).toEqual({
      kind: 'tcp',
      origin: 'http://[::1]:2375',
    })
  })

  it('uses TLS as the docker CLI does: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, port 2376', () => {
    expect(
      engineTargetFromEnv({
        DOCKER_HOST: 'tcp://127.0.0.1',
        DOCKER_TLS_VERIFY: '1',
        HOME: '/home/u',
      }),
    ).toEqual({
      kind: 'tls',
      origin: 'https://127.0.0.1:2376',
      certPath: '/home/u/.docker',
      verify: true,
    })
    expect(
      engineTargetFromEnv({
        DOCKER_HOST: 'tcp://127.0.0.1:9',
        DOCKER_TLS: '1',
        DOCKER_CERT_PATH: '/certs',
      }),
    ).toEqual({ kind: 'tls', origin: 'https://127.0.0.1:9', certPath: '/certs', verify: false })
  })

  it.each([
    'ssh://user@host',
    'npipe:////./pipe/docker_engine',
    'unix://relative.sock',
    'tcp://host:1/path',
    'tcp://:::',
  ])('refuses %s with a message that names it', (host) => {
    expect(() => engineTargetFromEnv({ DOCKER_HOST: host })).toThrow(/DOCKER_HOST/)
  })

  it.each([
    'tcp://user:s3cr3t@127.0.0.1:2375',
    'ssh://user:s3cr3t@host',
    'unix://user:s3cr3t@relative.sock',
  ])('refuses %s without showing the credentials in it', (host) => {
    expect(() => engineTargetFromEnv({ DOCKER_HOST: host })).toThrow(/DOCKER_HOST .*\*\*\*@/)
    expect(() => engineTargetFromEnv({ DOCKER_HOST: host })).not.toThrow(/s3cr3t/)
  })
})
