/**
 * The Node bundle on Bun: scripts/build-node.mjs compiles the bundled script for Bun as well
 * (`<script>.bun.cjs`, JavaScriptCore's bytecode beside it in `.jsc`), and the loader
 * (scripts/node-bundle/code-cache-loader.mjs) requires that on Bun. The gateway answers the same
 * from it, from a bytecode Bun refuses (Bun parses the source then), and from the plain script
 * when there is no compiled one.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleForTests, expectGatewayAnswers, expectGracefulStop } from '../support/bundle.ts'

const BUN = 'node_modules/.bin/bun'
const TOKEN = 'bun-bytecode-test-token-0123456789abcdef'
const bundle = bundleForTests('bun-bytecode', TOKEN)

const script = () => join(bundle.chunks, bundle.scripts()[0]!)
const compiled = () => `${script()}.bun.cjs`

/** Starts the bundle on Bun, checks what it answers, and stops it gracefully (SIGTERM). */
async function startAnswerStop() {
  const { child, url, output } = await bundle.start({ runtime: BUN, args: [] })
  await expectGatewayAnswers(url, TOKEN)
  await expectGracefulStop(child)
  expect(output()).not.toMatch(/"msg":"unexpected error"|Cannot find module/)
}

describe('the Node bundle on Bun', () => {
  it('is compiled for Bun beside the script, with its bytecode', () => {
    expect(readFileSync(compiled(), 'utf8')).toMatch(/^\/\/ @bun @bytecode @bun-cjs\n/)
    expect(readFileSync(`${compiled()}.jsc`).length).toBeGreaterThan(1_000_000)
  })

  it('starts from the compiled script (the plain one moved away)', async () => {
    const plain = script()
    renameSync(plain, `${plain}.away`)
    try {
      await startAnswerStop()
    } finally {
      renameSync(`${plain}.away`, plain)
    }
  }, 60_000)

  it('starts alike from bytecode Bun refuses', async () => {
    const bytecode = `${compiled()}.jsc`
    const good = readFileSync(bytecode)
    writeFileSync(bytecode, Buffer.alloc(4096, 7))
    try {
      await startAnswerStop()
    } finally {
      writeFileSync(bytecode, good)
    }
  }, 60_000)

  it('starts from the plain script when there is no compiled one', async () => {
    const bun = compiled()
    renameSync(bun, `${bun}.away`)
    try {
      expect(existsSync(bun)).toBe(false)
      await startAnswerStop()
    } finally {
      renameSync(`${bun}.away`, bun)
    }
  }, 60_000)
})
