/**
 * @module `GET /docs`: the API reference, rendered in the browser by Scalar's API reference, whose
 * script the gateway serves itself (no CDN, no outside request). Not part of the OpenAPI document.
 *
 * - `/docs`: the HTML shell, with a Content Security Policy that allows the gateway's origin only;
 * - `/docs/openapi.json`: the OpenAPI document, each operation's scopes as badges;
 * - `/docs/assets/<file>`: the renderer; the name changes with its content, so it is cached for good.
 */
import { Hono } from 'hono'
import { ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { withScopeBadges } from './scope-badges.ts'
import {
  DOCS_ASSETS_PATH,
  DOCS_CONTENT_SECURITY_POLICY,
  DOCS_DOCUMENT_PATH,
  docsShell,
} from './shell.ts'

/** The renderer `/docs` serves: the file name it goes by, and the script. */
export interface DocsRenderer {
  file: string
  script: string
}

/** Where the renderer comes from; read on the first request that needs it, never at build. */
export type DocsRendererLoader = () => Promise<DocsRenderer>

/** About 5 MB that starting does not need: imported on the first request that does. */
const importRenderer: DocsRendererLoader = () => import('./renderer.generated.js')

interface DocumentLike {
  info: { title: string }
}

const PAGE_HEADERS = {
  'content-security-policy': DOCS_CONTENT_SECURITY_POLICY,
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

const ASSET_HEADERS = {
  'content-type': 'text/javascript; charset=utf-8',
  'cache-control': 'public, max-age=31536000, immutable',
  'x-content-type-options': 'nosniff',
}

/** Each response is built on its first request and kept: building the app does none of it. */
export function docsRoutes(
  document: () => DocumentLike | Promise<DocumentLike>,
  loadRenderer: DocsRendererLoader = importRenderer,
) {
  const routes = new Hono<AppEnv>()
  let page: string | undefined
  let badgedDocument: string | undefined
  let asset: { file: string; bytes: Uint8Array<ArrayBuffer> } | undefined

  routes.get('/docs', async (c) => {
    page ??= docsShell((await document()).info.title, (await loadRenderer()).file)
    return c.html(page, 200, PAGE_HEADERS)
  })

  routes.get(DOCS_DOCUMENT_PATH, async (c) => {
    badgedDocument ??= JSON.stringify(withScopeBadges(await document()))
    return c.body(badgedDocument, 200, {
      'content-type': 'application/json',
      'cache-control': 'no-cache',
    })
  })

  routes.get(`${DOCS_ASSETS_PATH}/:file`, async (c) => {
    if (!asset) {
      const renderer = await loadRenderer()
      asset = { file: renderer.file, bytes: new TextEncoder().encode(renderer.script) }
    }
    if (c.req.param('file') !== asset.file) {
      throw new ProblemError(404, 'not-found', { detail: `No docs asset ${c.req.path}` })
    }
    return c.body(asset.bytes, 200, ASSET_HEADERS)
  })

  return routes
}
