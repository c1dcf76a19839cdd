/**
 * A real browser against a real gateway: headless Chromium (Debian's `chromium`, driven by
 * `playwright-core`) opens a page that follows a container's log with `EventSource` and a stream
 * ticket, resumes it exactly after the connection is cut (through a proxy in front of the
 * gateway), and loads `/docs` (from the gateway alone; its "Test Request" answered).
 *
 * scripts/test.sh installs Chromium when it is missing (as root). Without it these tests fail,
 * unless DOCKGATE_SKIP_BROWSER=1 skips them. DOCKGATE_DOCS_SCREENSHOT=<file.png> saves a
 * screenshot of /docs there.
 */
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { type ServerType, serve } from '@hono/node-server'
import { Hono } from 'hono'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { docsRoutes } from '../../src/docs/routes.ts'
import { testEngineEnv } from '../support/engine.ts'
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts'
import { postJson, type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const CHROMIUM = '/usr/bin/chromium'
const SKIP = process.env.DOCKGATE_SKIP_BROWSER === '1'

/** Follows `?container=` with the `?ticket=`, as a browser app would, into `window` globals. */
const TEST_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>dockgate EventSource test</title></head>
<body><pre id="log"></pre><script>
  const q = new URLSearchParams(location.search)
  window.received = []
  window.receivedAt = []
  window.ended = null
  window.failures = []
  window.problems = []
  const source = new EventSource('/v1/containers/' + encodeURIComponent(q.get('container')) +
    '/logs/stream?ticket=' + encodeURIComponent(q.get('ticket')))
  source.addEventListener('stdout', (e) => {
    window.received.push(JSON.parse(e.data).text)
    window.receivedAt.push(performance.now())
    document.getElementById('log').textContent += JSON.parse(e.data).text + '\\n'
  })
  source.addEventListener('end', (e) => {
    window.ended = JSON.parse(e.data)
    window.endedAt = performance.now()
    // Done: without this, EventSource would reopen the finished stream.
    source.close()
  })
  // EventSource's own event: the connection failed (it reconnects unless the answer was not 200).
  source.addEventListener('error', () => {
    window.failures.push('connection error (readyState ' + source.readyState + ')')
  })
  // The gateway's: a problem mid-stream (named so that it is not taken for the one above).
  source.addEventListener('problem', (e) => window.problems.push(JSON.parse(e.data)))
</script></body></html>`

describe.skipIf(SKIP)('a real browser (headless Chromium)', () => {
  let gw: TestGateway
  let server: ServerType | undefined
  let origin: string
  let serverPort: number
  let browser: Browser | undefined
  /** Request headers of every log stream request the server received. */
  const streamRequests: Record<string, string>[] = []

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `The browser tests need Debian's Chromium at ${CHROMIUM}, which is missing. ` +
          '`npm test` (scripts/test.sh) installs it when run as root; otherwise run ' +
          '`sudo apt-get install chromium`, or set DOCKGATE_SKIP_BROWSER=1 to skip these tests.',
      )
    }
    gw = await testGateway()
    const port = await new Promise<number>((resolve, reject) => {
      server = serve(
        {
          hostname: '127.0.0.1',
          port: 0,
          fetch: (request, env) => {
            const url = new URL(request.url)
            if (url.pathname === '/test-page.html') {
              return new Response(TEST_PAGE, {
                headers: { 'content-type': 'text/html; charset=utf-8' },
              })
            }
            if (url.pathname.endsWith('/logs/stream')) {
              streamRequests.push(Object.fromEntries(request.headers))
            }
            return gw.app.fetch(request, env)
          },
        },
        (info: AddressInfo) => resolve(info.port),
      )
      server.once('error', reject)
    })
    origin = `http://127.0.0.1:${port}`
    serverPort = port
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless=new'],
      timeout: 20_000,
    })
  }, 40_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise<void>((resolve) => {
      if (!server) return resolve()
      server.close(() => resolve())
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
  }, 15_000)

  /** A started container of this run that runs `script`, its id. */
  const startedContainer = async (name: string, script: string) => {
    const { status, body } = await gw.json(
      '/v1/containers?start=true',
      postJson({
        image: testEngineEnv().image,
        name: uniqueName(name),
        cmd: ['sh', '-c', script],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    )
    expect(status).toBe(201)
    return body.id as string
  }

  /** A stream ticket for logs, issued to the admin token. */
  const logsTicket = async () => {
    const issued = await fetch(`${origin}/v1/stream-tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf('admin')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['logs:read'] }),
    })
    expect(issued.status).toBe(201)
    return ((await issued.json()) as { ticket: string }).ticket
  }

  const openPage = async (): Promise<Page> => {
    const page = await browser!.newPage()
    page.setDefaultTimeout(15_000)
    return page
  }

  it('follows live log lines with EventSource and a stream ticket', async () => {
    // The pause first: the page is listening before the first line is written.
    const container = await startedContainer(
      'browser',
      'sleep 3; for i in $(seq 1 10); do echo line$i; sleep 0.3; done',
    )
    const ticket = await logsTicket()

    const page = await openPage()
    try {
      const query = new URLSearchParams({ container, ticket })
      await page.goto(`${origin}/test-page.html?${query}`)
      await page.waitForFunction(
        () => (window as any).received.length === 10 && (window as any).ended !== null,
      )
      const seen = await page.evaluate(() => {
        const w = window as any
        return {
          received: w.received as string[],
          receivedAt: w.receivedAt as number[],
          ended: w.ended,
          failures: w.failures as string[],
          text: document.getElementById('log')!.textContent,
        }
      })
      const lines = Array.from({ length: 10 }, (_, i) => `line${i + 1}`)
      expect(seen.received).toEqual(lines)
      expect(seen.text).toBe(lines.map((line) => `${line}\n`).join(''))
      expect(seen.ended).toMatchObject({ exitCode: 0 })
      expect(seen.failures).toEqual([])
      expect(await page.evaluate(() => (window as any).problems)).toEqual([])
      // Live, not one burst at the end: the lines are written 0.3 s apart over 2.7 s (on a busy
      // machine the page may connect late: the lines before that come at once, the rest live).
      expect(seen.receivedAt.at(-1)! - seen.receivedAt[0]!).toBeGreaterThan(800)
    } finally {
      await page.close()
    }

    // The browser sent the ticket in the URL, and no Authorization header.
    expect(streamRequests).toHaveLength(1)
    expect(streamRequests[0]!.accept).toBe('text/event-stream')
    expect(streamRequests[0]).not.toHaveProperty('authorization')

    // Bound to that stream, the ticket opens no other one.
    const other = await fetch(`${origin}/v1/events?ticket=${ticket}`)
    expect(other.status).toBe(401)
    expect((await other.json()).detail).toMatch(/bound to another stream/)
  })

  it('resumes exactly after the connection is cut, with the same ticket and Last-Event-ID', async () => {
    const container = await startedContainer(
      'browser-resume',
      'sleep 1; for i in $(seq 1 15); do echo line$i; sleep 0.3; done',
    )
    const ticket = await logsTicket()
    // The browser reaches the gateway through a proxy that can cut every connection.
    const proxy: FaultProxy = await startFaultProxy({ host: '127.0.0.1', port: serverPort })
    const viaProxy = proxy.dockerHost.replace('tcp://', 'http://')
    const before = streamRequests.length
    const page = await openPage()
    try {
      const query = new URLSearchParams({ container, ticket })
      await page.goto(`${viaProxy}/test-page.html?${query}`)
      await page.waitForFunction(() => (window as any).received.length >= 3)
      await proxy.down()
      await proxy.up()
      await page.waitForFunction(() => (window as any).ended !== null, undefined, {
        timeout: 25_000,
      })
      const seen = await page.evaluate(() => {
        const w = window as any
        return { received: w.received as string[], failures: w.failures as string[] }
      })
      // Every line once, in order: nothing lost at the cut, nothing sent twice after it.
      expect(seen.received).toEqual(Array.from({ length: 15 }, (_, i) => `line${i + 1}`))
      // The cut was seen (EventSource's error event, then its reconnect).
      expect(seen.failures.length).toBeGreaterThanOrEqual(1)
    } finally {
      await page.close()
      await proxy.close()
    }
    const requests = streamRequests.slice(before)
    expect(requests.length).toBeGreaterThanOrEqual(2)
    expect(requests[0]).not.toHaveProperty('last-event-id')
    expect(requests.at(-1)!['last-event-id']).toMatch(/^\d+/)
  }, 45_000)
})

/** A document whose operations need scopes, rendered by the same routes as the gateway's. */
const SCOPED_DOCUMENT = {
  openapi: '3.1.0',
  info: { title: 'Widgets', version: '1.0.0' },
  paths: {
    '/v1/widgets': {
      get: {
        operationId: 'listWidgets',
        summary: 'List the widgets',
        tags: ['widgets'],
        security: [{ Bearer: ['widgets:read'] }],
        responses: { '200': { description: 'The widgets' } },
      },
      post: {
        operationId: 'createWidget',
        summary: 'Create a widget',
        tags: ['widgets'],
        security: [{ Bearer: ['widgets:write'] }],
        responses: { '201': { description: 'Created' } },
      },
    },
  },
  components: { securitySchemes: { Bearer: { type: 'http', scheme: 'bearer' } } },
}

async function listen(fetch: (request: Request) => Response | Promise<Response>) {
  let server: ServerType | undefined
  const port = await new Promise<number>((resolve, reject) => {
    server = serve({ hostname: '127.0.0.1', port: 0, fetch }, (info: AddressInfo) =>
      resolve(info.port),
    )
    server.once('error', reject)
  })
  return { origin: `http://127.0.0.1:${port}`, server: server! }
}

function close(server: ServerType | undefined) {
  return new Promise<void>((resolve) => {
    if (!server) return resolve()
    server.close(() => resolve())
    if ('closeAllConnections' in server) server.closeAllConnections()
  })
}

/** Every request the page makes, by URL; those to another origin are refused and listed apart. */
interface Watched {
  page: Page
  requested: string[]
  outside: string[]
  /** The browser's reports of anything the Content Security Policy blocked. */
  blocked: string[]
}

async function watchedPage(browser: Browser, origin: string): Promise<Watched> {
  const context: BrowserContext = await browser.newContext({
    viewport: { width: 1400, height: 1000 },
  })
  const watched: Watched = {
    page: await context.newPage(),
    requested: [],
    outside: [],
    blocked: [],
  }
  await context.route('**/*', (route) => {
    const url = route.request().url()
    watched.requested.push(url)
    if (new URL(url).origin === origin) return route.continue()
    watched.outside.push(url)
    return route.abort('blockedbyclient')
  })
  watched.page.on('websocket', (socket) => watched.outside.push(socket.url()))
  watched.page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) watched.blocked.push(message.text())
  })
  watched.page.setDefaultTimeout(20_000)
  return watched
}

/**
 * `/docs`: the API reference renders from the gateway alone, with every request of the page
 * watched and any to another origin refused, and its "Test Request" reaches the real gateway with
 * a bearer token. In this file, after the log test: two browsers at once on two cores would
 * starve the log test's timing.
 */
describe.skipIf(SKIP)('/docs in a real browser (headless Chromium)', () => {
  let gw: TestGateway
  let gateway: { origin: string; server: ServerType } | undefined
  let scoped: { origin: string; server: ServerType } | undefined
  let browser: Browser | undefined

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Debian's Chromium is missing at ${CHROMIUM} (see above)`)
    gw = await testGateway()
    gateway = await listen((request) => gw.app.fetch(request))
    const scopedApp = new Hono().route(
      '/',
      docsRoutes(() => SCOPED_DOCUMENT),
    )
    scoped = await listen((request) => scopedApp.fetch(request))
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless=new'],
      timeout: 20_000,
    })
  }, 40_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all([close(gateway?.server), close(scoped?.server)])
  }, 15_000)

  it('renders from the gateway alone, and "Test Request" calls it with a bearer token', async () => {
    const origin = gateway!.origin
    const { page, requested, outside, blocked } = await watchedPage(browser!, origin)
    try {
      const calls: { authorization: string | undefined; status: number }[] = []
      page.on('response', (response) => {
        if (new URL(response.url()).pathname !== '/v1/system/version') return
        calls.push({
          authorization: response.request().headers().authorization,
          status: response.status(),
        })
      })
      const loaded = await page.goto(`${origin}/docs#tag/system/GET/v1/system/version`)
      expect(loaded?.status()).toBe(200)

      // Exactly: `… (one engine)` is the same operation under /v1/engines/{engine}
      const title = page.getByRole('heading', {
        name: 'Versions of the engine and the gateway',
        exact: true,
      })
      const operation = page.locator('section', { has: title })
      await operation.getByRole('button', { name: 'Test Request' }).click()
      const client = page.getByRole('dialog')
      await client.getByPlaceholder('Token').fill(tokenOf('reader'))
      const answered = page.waitForResponse((r) => r.url().endsWith('/v1/system/version'))
      await client.getByRole('button', { name: /^Send get request/ }).click()
      await answered
      // The answer as the page shows it: its status and the engine's version from the body.
      await client.getByText('200 OK', { exact: true }).waitFor()
      expect(await client.textContent()).toContain('apiVersion')

      expect(calls).toEqual([{ authorization: `Bearer ${tokenOf('reader')}`, status: 200 }])
      expect(outside).toEqual([])
      expect(blocked).toEqual([])
      // The shell, the renderer and the document it renders, then the call: nothing else.
      const paths = requested.map((url) => new URL(url).pathname)
      expect(paths.slice(0, 3)).toEqual([
        '/docs',
        expect.stringMatching(/^\/docs\/assets\/api-reference\.[0-9a-f]{16}\.js$/),
        '/docs/openapi.json',
      ])

      // The operation's scopes, where its document names them, show beside its title.
      const shown = await gw.json('/docs/openapi.json', { role: null })
      for (const badge of shown.body.paths['/v1/system/version'].get['x-badges'] ?? []) {
        await operation.getByText(badge.name, { exact: true }).waitFor()
      }
      const screenshot = process.env.DOCKGATE_DOCS_SCREENSHOT
      if (screenshot) await page.screenshot({ path: screenshot })
    } finally {
      await page.context().close()
    }
  })

  it("shows each operation's required scopes", async () => {
    const origin = scoped!.origin
    const { page, outside } = await watchedPage(browser!, origin)
    try {
      await page.goto(`${origin}/docs#tag/widgets`)
      for (const [summary, scope] of [
        ['List the widgets', 'widgets:read'],
        ['Create a widget', 'widgets:write'],
      ] as const) {
        const title = page.getByRole('heading', { name: summary })
        const operation = page.locator('section', { has: title })
        await operation.getByText(`scope: ${scope}`, { exact: true }).waitFor()
      }
      expect(outside).toEqual([])
    } finally {
      await page.context().close()
    }
  })
})
