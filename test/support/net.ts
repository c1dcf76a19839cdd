/** Loopback ports and the kernel's own count of TCP connections, for tests that must not trust the gateway's word. */
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Established TCP connections from process `pid` (this one by default) to a port, as `ss` lists them. */
export function tcpConnectionsTo(port: string | number, pid: number = process.pid): number {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`], {
    encoding: 'utf8',
  })
  return out.split('\n').filter((line) => line.includes(`pid=${pid},`)).length
}
