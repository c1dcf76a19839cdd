import { createHash } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { scopeBadges } from '../../src/docs/scope-badges.ts'
import { type TestGateway, testGateway } from '../support/gateway.ts'

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

/** `default-src 'none'; script-src 'self'` → { 'default-src': ["'none'"], … } */
function directives(policy: string): Record<string, string[]> {
  return Object.fromEntries(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...sources]) => [name, sources]),
  )
}

describe('GET /docs', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await testGateway()
  })

  const rendererPath = async () => {
    const html = await (await gw.call('/docs', { role: null })).text()
    return /<script src="(\/docs\/assets\/[^"]+)"><\/script>/.exec(html)?.[1]
  }

  it('serves an HTML shell, without a token, that loads the renderer from the gateway itself', async () => {
    const response = await gw.call('/docs', { role: null })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=UTF-8')
    const html = await response.text()
    expect(await rendererPath()).toMatch(/^\/docs\/assets\/api-reference\.[0-9a-f]{16}\.js$/)
    expect(html).toContain('data-url="/docs/openapi.json"')
    expect(html).toContain('<title>dockgate API reference</title>')
    expect(html).not.toMatch(/(src|href|data-url)="(https?:)?\/\//)
  })

  it('forbids every other origin in its Content Security Policy', async () => {
    const response = await gw.call('/docs', { role: null })
    const policy = directives(response.headers.get('content-security-policy') ?? '')
    expect(policy['default-src']).toEqual(["'none'"])
    expect(policy['script-src']).toEqual(["'self'"])
    expect(policy['connect-src']).toEqual(["'self'"])
    expect(policy['frame-ancestors']).toEqual(["'none'"])
    for (const [name, sources] of Object.entries(policy)) {
      for (const source of sources) {
        expect(source, name).toMatch(/^('self'|'none'|'unsafe-inline'|data:)$/)
      }
    }
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('serves the renderer as JavaScript under a name that changes with it, cached for good', async () => {
    const path = (await rendererPath())!
    const response = await gw.call(path, { role: null })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    const script = await response.text()
    expect(script).toContain('createApiReference')
    const hash = createHash('sha256').update(script).digest('hex').slice(0, 16)
    expect(path).toBe(`/docs/assets/api-reference.${hash}.js`)
  })

  it('answers 404 for any other asset', async () => {
    for (const name of [
      'api-reference.0000000000000000.js',
      'standalone.js',
      '..%2Fopenapi.json',
    ]) {
      const { status, body, response } = await gw.json(`/docs/assets/${name}`, { role: null })
      expect(status, name).toBe(404)
      expect(response.headers.get('content-type')).toBe('application/problem+json')
      expect(body.type).toBe('urn:dockgate:problem:not-found')
    }
  })

  it("gives the renderer /openapi.json with each operation's scopes as badges", async () => {
    const original = await gw.json('/openapi.json', { role: null })
    const shown = await gw.json('/docs/openapi.json', { role: null })
    expect(shown.status).toBe(200)
    expect(shown.response.headers.get('content-type')).toBe('application/json')
    for (const [path, item] of Object.entries<Record<string, any>>(shown.body.paths)) {
      for (const method of METHODS.filter((m) => item[m])) {
        const operation = item[method]
        const expected = scopeBadges(original.body.paths[path][method].security)
        expect(operation['x-badges'] ?? [], `${method} ${path}`).toEqual(expected)
        delete operation['x-badges']
      }
    }
    // Nothing else differs.
    expect(shown.body).toEqual(original.body)
  })
})
