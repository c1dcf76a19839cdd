/**
 * @module The `/docs` page: a small HTML shell that loads the API reference renderer (Scalar)
 * from the gateway itself, and the Content Security Policy that keeps it there.
 */

/** Where the renderer reads the document from: the OpenAPI document with scope badges. */
export const DOCS_DOCUMENT_PATH = '/docs/openapi.json'
export const DOCS_ASSETS_PATH = '/docs/assets'

/**
 * Nothing but the gateway's own origin: no script, style, font, image or request elsewhere.
 * Inline styles are allowed because the renderer sets them (it injects its stylesheet and uses
 * style attributes); inline scripts are not: the shell has none.
 */
export const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** The renderer's settings; see @scalar/api-reference's configuration. */
const RENDERER_CONFIGURATION = {
  // Otherwise its fonts come from its own CDN; the system's fonts instead.
  withDefaultFonts: false,
  telemetry: false,
  showDeveloperTools: 'never',
  // The full client it opens offers sign-in and sharing through Scalar's services; each
  // operation's "Test Request" stays.
  hideClientButton: true,
  // It would offer /docs/openapi.json (with the badges); the document is /openapi.json.
  documentDownloadType: 'none',
  // Its AI agent and MCP integration talk to Scalar's services.
  agent: { disabled: true },
  mcp: { disabled: true },
  authentication: { preferredSecurityScheme: 'Bearer' },
  // A token typed into the page is not kept in the browser's storage.
  persistAuth: false,
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

/** The page: the renderer mounts where `#api-reference` is and reads its settings from it. */
export function docsShell(title: string, rendererFile: string): string {
  const configuration = escapeHtml(JSON.stringify(RENDERER_CONFIGURATION))
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} API reference</title>
</head>
<body>
<noscript>This reference needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script id="api-reference" type="application/json" data-url="${DOCS_DOCUMENT_PATH}" data-configuration="${configuration}"></script>
<script src="${DOCS_ASSETS_PATH}/${escapeHtml(rendererFile)}"></script>
</body>
</html>
`
}
