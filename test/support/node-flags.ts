import { readFileSync } from 'node:fs'

/** The flags `npm start` gives Node before the bundle (package.json `config.nodeFlags`). */
export const NODE_FLAGS: string[] =
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      config?: { nodeFlags?: string }
    }
  ).config?.nodeFlags
    ?.split(/\s+/)
    .filter(Boolean) ?? []
