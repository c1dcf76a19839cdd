/**
 * The Node entry's Fetch globals are the bundled undici's (src/node/fetch-globals.ts): Node's own
 * copy of undici is never loaded (nor its http2: scripts/node-bundle/http2-on-demand.mjs; nor
 * `tls` and `https`: scripts/node-bundle/on-demand.cjs; nor `assert`:
 * scripts/node-bundle/assert-on-demand.cjs), and
 * what the gateway reads and writes through those classes still works: request bodies (JSON, and
 * one too large), responses built from strings, from the engine's bodies and from a 5 MB file, an
 * event stream, a ticket issued by POST and used on it.
 */
import type { ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { bundleForTests, expectGracefulStop } from '../support/bundle.ts'
import { expectDocsRendererServed } from '../support/docs.ts'
import { NODE_FLAGS } from '../support/node-flags.ts'

const TOKEN = 'fetch-globals-test-token-0123456789abcdef'
const bundle = bundleForTests('fetch-globals', TOKEN)
const report = join(bundle.dir, 'loaded.json')
let child: ChildProcess
let url: string
let output: () => string

beforeAll(async () => {
  // Preloaded: on the way out, which of Node's built-in modules the process had loaded
  // (`process.moduleLoadList`: Node's own record of them).
  const preload = join(bundle.dir, 'preload.cjs')
  writeFileSync(
    preload,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify(process.moduleLoadList)))\n`,
  )
  ;({ child, url, output } = await bundle.start({ args: [...NODE_FLAGS, '--require', preload] }))
}, 120_000)

const auth = { authorization: `Bearer ${TOKEN}` }

describe('the Node entry on the bundled undici’s Fetch classes', () => {
  it('answers from strings, from the engine and from a file', async () => {
    const health = await fetch(`${url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok' })
    const version = await fetch(`${url}/v1/system/version`, { headers: auth })
    expect(version.status).toBe(200)
    expect(await version.json()).toMatchObject({ engine: { apiVersion: expect.any(String) } })
    const list = await fetch(`${url}/v1/containers?all=true`, { headers: auth })
    expect(list.status).toBe(200)
    expect(await list.json()).toMatchObject({ containers: expect.any(Array) })
    await expectDocsRendererServed(url)
  })

  it('reads request bodies: a ticket issued by POST opens its event stream', async () => {
    const issued = await fetch(`${url}/v1/stream-tickets`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['events:read'], stream: '/v1/events' }),
    })
    expect(issued.status).toBe(201)
    const { ticket, stream } = (await issued.json()) as { ticket: string; stream: string }
    expect(stream).toBe('/v1/events')
    const events = await fetch(`${url}/v1/events?ticket=${encodeURIComponent(ticket)}`)
    expect(events.status).toBe(200)
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/)
    await events.body!.cancel()
  })

  it('answers a malformed and an oversized body with a problem', async () => {
    const malformed = await fetch(`${url}/v1/stream-tickets`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"scopes": [',
    })
    expect(malformed.status).toBe(400)
    expect(malformed.headers.get('content-type')).toBe('application/problem+json')
    const oversized = await fetch(`${url}/v1/stream-tickets`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }),
    })
    expect(oversized.status).toBe(413)
    expect(oversized.headers.get('content-type')).toBe('application/problem+json')
  })

  it('never loaded Node’s own undici, and stops cleanly', async () => {
    await expectGracefulStop(child)
    const loaded = JSON.parse(readFileSync(report, 'utf8')) as string[]
    // The record is Node's: a name it no longer uses would make this pass for nothing.
    expect(loaded).toContain('NativeModule http')
    expect(loaded).not.toContain('NativeModule internal/deps/undici/undici')
    // Nor its http2 (scripts/node-bundle/http2-on-demand.mjs): the gateway serves HTTP/1.1.
    expect(loaded).not.toContain('NativeModule http2')
    // Nor `tls` and `https` (scripts/node-bundle/on-demand.cjs, src/transport/node.ts): its engine
    // is on a Unix socket, and `ws` uses them only as a client.
    expect(loaded).not.toContain('NativeModule tls')
    expect(loaded).not.toContain('NativeModule https')
    // Nor `assert`, which undici calls only as a function (scripts/node-bundle/assert-on-demand.cjs).
    expect(loaded).not.toContain('NativeModule assert')
    expect(output()).not.toMatch(/"msg":"unexpected error"/)
  })
})
