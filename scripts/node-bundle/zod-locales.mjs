// zod's `locales` namespace (`z.locales`, `core.locales`) with only the English messages, which
// zod sets up by itself and the gateway uses. The bundle keeps every member of a namespace that
// is re-exported (`z` from @hono/zod-openapi is one), so the full namespace would add some 60
// unused locales, about a sixth of the bundle. scripts/build-node.mjs points zod's
// `locales/index.js` at this file.
export { default as en } from 'zod/v4/locales/en.js'
