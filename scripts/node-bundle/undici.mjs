// What the Node transport and the Fetch globals (src/node/fetch-globals.ts) import from undici,
// taken from the modules that define it. undici's own index.js loads all of undici at start (mock
// agents, WebSocket, EventSource, caches, every interceptor): half of its megabyte, never used
// here. scripts/build-node.mjs points `undici` at this file; a name src/ imports that is missing
// here fails the build, and a path that moves in an undici upgrade fails it too (the version is
// pinned in package.json).
export { default as Agent } from 'undici/lib/dispatcher/agent.js'
export { default as Client } from 'undici/lib/dispatcher/client.js'
export { FormData } from 'undici/lib/web/fetch/formdata.js'
export { Headers } from 'undici/lib/web/fetch/headers.js'
export { fetch } from 'undici/lib/web/fetch/index.js'
export { Request } from 'undici/lib/web/fetch/request.js'
export { Response } from 'undici/lib/web/fetch/response.js'
