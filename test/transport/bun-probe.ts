/**
 * Run by Bun (test/transport/bun.test.ts): the Bun transport (src/transport/bun.ts) to the engine
 * `DOCKER_HOST` names, through the engine client. Prints one JSON line of what it saw.
 */
import { EngineClient } from '../../src/engine/client.ts'
import { createBunTransport } from '../../src/transport/bun.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'

const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const transport = createBunTransport(engineTargetFromEnv(process.env))
const client = new EngineClient(transport)
const decoder = new TextDecoder()

/** A container that writes one line, waits 4 s, and writes another: its followed log arrives in two steps. */
async function followedLog() {
  const created = (await client.json('POST', '/containers/create', {
    body: { Image: image, Cmd: ['sh', '-c', 'echo first; sleep 4; echo second'], Tty: true },
    query: { name: `dgt-bun-probe-${process.pid}-${Date.now().toString(36)}` },
  })) as { Id: string }
  try {
    await client.status('POST', `/containers/${created.Id}/start`)
    const started = Date.now()
    const response = await client.request('GET', `/containers/${created.Id}/logs`, {
      query: { follow: '1', stdout: '1' },
      held: true,
      timeoutMs: 0,
    })
    const arrivals: { text: string; ms: number }[] = []
    const reader = response.body!.getReader()
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      arrivals.push({ text: decoder.decode(read.value), ms: Date.now() - started })
    }
    return arrivals
  } finally {
    await client.status('DELETE', `/containers/${created.Id}`, { query: { force: '1' } })
  }
}

/** The events stream, held open until the caller aborts it: its body then ends with the abort. */
async function abortedEvents() {
  const abort = new AbortController()
  const response = await client.request('GET', '/events', {
    held: true,
    timeoutMs: 0,
    signal: abort.signal,
  })
  const reader = response.body!.getReader()
  // Other clients' events may arrive meanwhile: read until the body ends or fails.
  const reading = (async () => {
    try {
      for (let read = await reader.read(); !read.done; read = await reader.read()) {}
      return 'ended'
    } catch (error) {
      return `rejected: ${(error as Error).name}`
    }
  })()
  setTimeout(() => abort.abort(), 200)
  const stillOpen = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5_000))
  return Promise.race([reading, stillOpen])
}

const version = (await client.json('GET', '/version')) as { ApiVersion: string }
const inspect = (await client.json('GET', `/images/${encodeURIComponent(image)}/json`)) as {
  RepoTags: string[]
}
const missing = await client.json('GET', '/containers/dgt-bun-probe-no-such-container/json').then(
  () => 0,
  (error: { status: number }) => error.status,
)
console.log(
  JSON.stringify({
    description: transport.description,
    apiVersion: version.ApiVersion,
    tags: inspect.RepoTags,
    missing,
    log: await followedLog(),
    events: await abortedEvents(),
  }),
)
process.exit(0)
