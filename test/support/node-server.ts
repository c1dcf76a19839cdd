/** A fetch handler served by @hono/node-server on a loopback port, as the Node entry serves it. */
import type { ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { afterAll } from 'vitest'

type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>

/** Listening once it resolves; closed after the file's tests. */
export async function servedOnNode(
  fetch: FetchHandler,
  serverOptions?: ServerOptions,
): Promise<{ port: number }> {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1', serverOptions })
  afterAll(() => new Promise((resolve) => server.close(resolve)))
  await new Promise((resolve) => server.once('listening', resolve))
  return { port: (server.address() as AddressInfo).port }
}
