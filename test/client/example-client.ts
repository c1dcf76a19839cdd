/**
 * A small client written the way other services use dockgate: types generated from the
 * committed openapi/openapi.json by openapi-typescript (into test/generated/, by the test).
 * test/client/typed-client.test.ts type-checks this file with tsc and runs it against the gateway.
 */
import type { components, paths } from '../generated/dockgate.ts'

type Fetch = (input: string, init?: RequestInit) => Promise<Response>
type ContainerList = paths['/v1/containers']['get']['responses'][200]['content']['application/json']
type CreateBody = paths['/v1/containers']['post']['requestBody']['content']['application/json']
type Detail = components['schemas']['ContainerDetail']
type Problem = components['schemas']['Problem']
type Logs =
  paths['/v1/containers/{id}/logs']['get']['responses'][200]['content']['application/json']
/** One event of the log stream, as the document types it: `event` names the variant. */
type LogStreamEvent =
  paths['/v1/containers/{id}/logs/stream']['get']['responses'][200]['content']['text/event-stream']

/** Server-sent events as `{ event, id, data }` with `data` parsed: the document's stream types. */
async function* serverSentEvents<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end >= 0) {
      const fields = new Map<string, string>()
      for (const line of buffer.slice(0, end).split('\n')) {
        const colon = line.indexOf(':')
        if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart())
      }
      buffer = buffer.slice(end + 2)
      end = buffer.indexOf('\n\n')
      const data = fields.get('data')
      if (fields.has('event') && data !== undefined) {
        yield { event: fields.get('event'), id: fields.get('id'), data: JSON.parse(data) } as T
      }
    }
  }
}

export function dockgateClient(baseUrl: string, token: string, fetchImpl: Fetch) {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetchImpl(baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (!response.ok) {
      const problem = (await response.json()) as Problem
      throw new Error(`${problem.status} ${problem.type}: ${problem.detail ?? problem.title}`)
    }
    return (response.status === 204 ? undefined : await response.json()) as T
  }

  return {
    createAndStart: (body: CreateBody) => call<Detail>('POST', '/v1/containers?start=true', body),
    wait: (id: string) =>
      call<{ exitCode: number }>('POST', `/v1/containers/${encodeURIComponent(id)}/wait`),
    logs: (id: string) => call<Logs>('GET', `/v1/containers/${encodeURIComponent(id)}/logs`),
    running: async (label: string) => {
      const list = await call<ContainerList>(
        'GET',
        `/v1/containers?label=${encodeURIComponent(label)}`,
      )
      return list.containers.map((c) => ({ id: c.id, name: c.name, startedAt: c.startedAt }))
    },
    /** The log lines of a run until it ends: typed events, `event` kept as the discriminant. */
    followLogs: async (id: string) => {
      const response = await fetchImpl(
        `${baseUrl}/v1/containers/${encodeURIComponent(id)}/logs/stream`,
        {
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        },
      )
      const lines: string[] = []
      for await (const message of serverSentEvents<LogStreamEvent>(response.body!)) {
        if (message.event === 'stdout' || message.event === 'stderr') lines.push(message.data.text)
        else if (message.event === 'end') return { lines, exitCode: message.data.exitCode }
      }
      return { lines, exitCode: null }
    },
    remove: (id: string) =>
      call<undefined>('DELETE', `/v1/containers/${encodeURIComponent(id)}?force=true`),
  }
}

/** Would compile against untyped (`any`) output too; the @ts-expect-error lines prove the types bite. */
export function misuse(client: ReturnType<typeof dockgateClient>) {
  // @ts-expect-error `image` is required by the create schema
  void client.createAndStart({ cmd: ['true'] })
  // @ts-expect-error the curated schema has no HostConfig
  void client.createAndStart({ image: 'x', HostConfig: { Privileged: true } })
  // @ts-expect-error `resources.memory` is a number of bytes
  void client.createAndStart({ image: 'x', resources: { memory: '1g' } })
}

/** The stream's event names are a closed union: a misspelt one does not compile. */
export function misreadEvent(message: LogStreamEvent) {
  // @ts-expect-error no event is called `stdot`
  if (message.event === 'stdot') return message.data
  // @ts-expect-error an `end` event's data has no `text`
  if (message.event === 'end') return message.data.text
  return undefined
}
