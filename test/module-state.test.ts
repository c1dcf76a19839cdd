/**
 * Two gateways in one process share nothing through their modules: every piece of state that one
 * app's requests change lives in that app's instance. A module keeps state only as a memo of a
 * pure function (the same answer whichever app asks), or keyed on an object that belongs to one
 * request, each named below with its reason. A new module-level `let` or collection fails here.
 */
import { readFileSync } from 'node:fs'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { filesUnder } from './support/files.ts'

const ALLOWED: Record<string, string> = {
  recentDigests: 'auth/tokens.ts: a bounded memo of token digests (a pure function)',
  compiledGlobs: 'domain/policy.ts: a memo of compiled glob patterns (a pure function)',
  lastMs: 'observability/iso-time.ts: the current millisecond as a string, shared by design',
  lastIso: 'observability/iso-time.ts: the current millisecond as a string, shared by design',
  lastSecond: 'observability/iso-time.ts: the current second, shared by design',
  secondPrefix: 'observability/iso-time.ts: the current second as a string, shared by design',
  summaryJson:
    'routes/containers.view.ts: a memo of one inspect answer’s summary for the redaction patterns (a pure function)',
  listenersBySignal: 'http/abort-listeners.ts: keyed on an abort signal, which has one owner',
  liveRequests: 'transport/node.ts: keyed on one request',
  chunkFrames:
    'node/event-streams.ts: a memo of one chunk’s chunked-encoding frame, keyed on the chunk (a pure function)',
  built: 'edge.ts: the entry point, which builds the one gateway of its isolate',
  compiledEscaper:
    'streams/json-escape-wasm.ts: the WebAssembly escaper compiled once, its memory a scratch copy that each call fills afresh and reads synchronously',
}

const COLLECTIONS = new Set(['Map', 'Set', 'WeakMap', 'WeakSet'])
/** By convention a constant: `DENIED = new Set([…])` is never changed. */
const CONSTANT_NAME = /^[A-Z][A-Z0-9_]*$/

const sourceFiles = (dir: string) =>
  filesUnder(dir, (name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))

/** `file: name` of every top-level `let`/`var`, and of every top-level `const` collection. */
function moduleState(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest)
  const found: string[] = []
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue
    const constant = (statement.declarationList.flags & ts.NodeFlags.Const) !== 0
    for (const declaration of statement.declarationList.declarations) {
      const name = declaration.name.getText(source)
      const init = declaration.initializer
      const collection =
        init !== undefined &&
        ts.isNewExpression(init) &&
        COLLECTIONS.has(init.expression.getText(source)) &&
        !CONSTANT_NAME.test(name)
      if (!constant || collection) found.push(`${file}: ${name}`)
    }
  }
  return found
}

describe('module-level state', () => {
  it('is only the memos and per-request keys named here', () => {
    const state = sourceFiles('src').flatMap(moduleState)
    const unexplained = state.filter((entry) => !(entry.split(': ')[1]! in ALLOWED))
    expect(unexplained).toEqual([])
  })
})
