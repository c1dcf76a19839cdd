// Writes or checks openapi/openapi.json from the built sources (run `npm run build` first;
// the npm scripts do). Node 20 cannot run TypeScript directly, hence dist/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { openApiText } from '../dist/openapi.js'

const FILE = new URL('../openapi/openapi.json', import.meta.url)
const mode = process.argv[2]
const generated = await openApiText()

if (mode === 'write') {
  mkdirSync(new URL('../openapi/', import.meta.url), { recursive: true })
  writeFileSync(FILE, generated)
  console.log('wrote openapi/openapi.json')
} else if (mode === 'check') {
  let committed = ''
  try {
    committed = readFileSync(FILE, 'utf8')
  } catch {}
  if (committed !== generated) {
    console.error('openapi/openapi.json is stale: run `npm run openapi` and commit the result')
    process.exit(1)
  }
  console.log('openapi/openapi.json is up to date')
} else {
  console.error('usage: node scripts/openapi.mjs write|check')
  process.exit(2)
}
