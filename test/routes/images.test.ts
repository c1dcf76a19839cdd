import { beforeAll, describe, expect, it } from 'vitest'
import { testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway } from '../support/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await testGateway({
    clients: { fixtures: { scopes: ['images:read'], policy: { images: ['dockgate-fixture:*'] } } },
  })
})

describe('GET /v1/images', () => {
  it('lists the fixture image, which the policy allows, with its tags', async () => {
    const { status, body } = await gw.json('/v1/images', { role: 'fixtures' })
    expect(status).toBe(200)
    const fixture = body.images.find((i: { tags: string[] }) =>
      i.tags.includes(testEngineEnv().image),
    )
    expect(fixture).toMatchObject({ id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) })
    expect(fixture.tags).toContain(testEngineEnv().nestedImage)
    expect(Number.isNaN(Date.parse(fixture.createdAt))).toBe(false)
  })

  it('needs images:read', async () => {
    expect((await gw.json('/v1/images', { role: 'writer' })).status).toBe(403)
  })
})

describe('GET /v1/images/{ref}', () => {
  it('inspects by tag, by a URL-encoded reference with a slash, and by id', async () => {
    const { body: byTag } = await gw.json(`/v1/images/${encodeURIComponent(testEngineEnv().image)}`)
    expect(byTag.config.cmd).toEqual(['sh'])
    const nested = await gw.json(`/v1/images/${encodeURIComponent(testEngineEnv().nestedImage)}`)
    expect(nested.status).toBe(200)
    expect(nested.body.id).toBe(byTag.id)
    const byId = await gw.json(
      `/v1/images/${byTag.id.slice('sha256:'.length, 'sha256:'.length + 12)}`,
    )
    expect(byId.body.id).toBe(byTag.id)
  })

  it('answers 404 for an image the engine does not have', async () => {
    const { status, body } = await gw.json(`/v1/images/${encodeURIComponent('dockgate-nope:1')}`)
    expect(status).toBe(404)
    expect(body.type).toBe('urn:dockgate:problem:not-found')
  })

  it('takes a reference the engine can name (237 characters), and refuses a longer one itself', async () => {
    // Without a registry the engine names it docker.io/<name>: 10 more characters, which at 250
    // made the engine refuse it with a 400 of its own (the conformance fuzzer found it)
    const name = (length: number) => `${'a'.repeat(120)}/${'b'.repeat(length - 121)}`
    const fits = await gw.json(`/v1/images/${encodeURIComponent(name(237))}`)
    expect(fits.status).toBe(404)
    const over = await gw.json(`/v1/images/${encodeURIComponent(name(250))}`)
    expect(over.status).toBe(400)
    expect(over.body.type).toBe('urn:dockgate:problem:validation-failed')
    expect(over.body.invalidParams).toEqual([
      { name: 'param.ref', reason: 'Too big: expected string to have <=237 characters' },
    ])
  })

  it('takes an upper-case first component only where it names a registry, as the engine does', async () => {
    // Without a dot, a port or `localhost` the first component is part of a Docker Hub name,
    // which the engine refuses in upper case with a 400 of its own (the conformance fuzzer found
    // KnaA/y7 answered that way); with one it is a registry host, and the engine looks it up.
    for (const ref of ['Kna.A/app', 'KnaA:5000/app', 'localhost/app', 'kna.a/app', 'knaa/app']) {
      const { status } = await gw.json(`/v1/images/${encodeURIComponent(ref)}`)
      expect({ ref, status }).toEqual({ ref, status: 404 })
    }
    const hub = await gw.json(`/v1/images/${encodeURIComponent('KnaA/app')}`)
    expect(hub.status).toBe(400)
    expect(hub.body.type).toBe('urn:dockgate:problem:validation-failed')
  })

  it.each(['..%2F..%2Fversion', 'UPPER', 'a%3Fb', 'name%3A%3Atag'])(
    'refuses the reference %s',
    async (ref) => {
      const { status, body } = await gw.json(`/v1/images/${ref}`)
      expect(status).toBe(400)
      expect(body.type).toBe('urn:dockgate:problem:validation-failed')
    },
  )
})
