/**
 * @module `npm run token -- --name NAME --scopes a,b [--config FILE] [--write]`
 *
 * Creates an API token, prints it once, and prints the config entry that holds only its hash;
 * with `--write`, adds that entry to the config file (mode 0600), which a running gateway
 * picks up without a restart.
 */
import { parseArgs } from 'node:util'
import { generateToken, hashToken } from '../auth/tokens.ts'
import { TokenEntrySchema } from '../config.ts'
import { DEFAULT_CONFIG_PATH, loadConfig } from '../config-store.ts'
import { SCOPES, ScopeSchema } from '../domain/principal.ts'
import { nodeFiles } from '../node/config-file.ts'

const USAGE = `usage: npm run token -- --name NAME --scopes SCOPE[,SCOPE…] [--config FILE] [--write]
scopes: ${SCOPES.join(', ')}`

async function main() {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      scopes: { type: 'string' },
      config: { type: 'string', default: process.env.DOCKGATE_CONFIG ?? DEFAULT_CONFIG_PATH },
      write: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help || !values.name || !values.scopes) {
    console.error(USAGE)
    process.exit(values.help ? 0 : 2)
  }
  const scopes = values.scopes.split(',').map((s) => ScopeSchema.parse(s.trim()))
  const token = generateToken()
  const entry = TokenEntrySchema.parse({ name: values.name, hash: await hashToken(token), scopes })

  console.log(`Token for ${entry.name} (shown only now):\n\n  ${token}\n`)
  if (values.write) {
    const config = loadConfig(nodeFiles, values.config)
    if (config.tokens.some((t) => t.name === entry.name)) {
      throw new Error(`${values.config} already has a token named ${entry.name}`)
    }
    const next = { ...config, tokens: [...config.tokens, entry] }
    nodeFiles.writePrivate(values.config, `${JSON.stringify(next, null, 2)}\n`)
    console.log(`Added to ${values.config}:`)
  } else {
    console.log(`Add this entry to "tokens" in ${values.config}:`)
  }
  console.log(JSON.stringify(entry, null, 2))
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
