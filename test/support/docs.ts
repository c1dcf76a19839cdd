/** The API reference a gateway serves at `/docs`. */
import { expect } from 'vitest'

/** Checks that `/docs` names its renderer script and that the script itself is served whole. */
export async function expectDocsRendererServed(url: string): Promise<void> {
  const page = await (await fetch(`${url}/docs`)).text()
  const asset = /\/docs\/assets\/[^"]+\.js/.exec(page)?.[0]
  expect(asset).toBeDefined()
  const renderer = await fetch(`${url}${asset}`)
  expect(renderer.status).toBe(200)
  expect((await renderer.text()).length).toBeGreaterThan(1_000_000)
}
