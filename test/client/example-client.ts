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
