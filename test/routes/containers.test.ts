import { beforeAll, describe, expect, it } from 'vitest'
import { COMMAND_COULD_NOT_RUN, COMMAND_NOT_RUNNABLE } from '../../src/routes/start-failure.ts'
import { direct, engineContainerIds, engineInspect, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { serveApp } from '../support/reliability.ts'

let gw: TestGateway
const image = () => testEngineEnv().image

/** Creates through the gateway; every test container is labelled so the run can clean up. */
async function create(body: Record<string, unknown>, query = '') {
  const name = (body.name as string | undefined) ?? uniqueName('c')
  const labels = { [TEST_LABEL]: TEST_RUN, ...(body.labels as Record<string, string> | undefined) }
  return gw.json(`/v1/containers${query}`, postJson({ image: image(), ...body, name, labels }))
}

beforeAll(async () => {
  gw = await testGateway()
})

describe('POST /v1/containers', () => {
  it('creates a container with the curated fields and answers its detail', async () => {
    const name = uniqueName('create')
    const { status, body, response } = await create({
      name,
      cmd: ['sh', '-c', 'echo hi'],
      env: { GREETING: 'hello', SECRET: 's3cret' },
      labels: { app: 'demo' },
      workingDir: '/tmp',
      resources: { memory: 64 * 1024 * 1024, cpus: 0.5, pids: 32 },
    })
    expect(status).toBe(201)
    expect(response.headers.get('location')).toBe(`/v1/containers/${body.id}`)
    expect(body).toMatchObject({
      name,
      image: image(),
      state: { status: 'created', running: false, exitCode: null, startedAt: null },
      config: { cmd: ['sh', '-c', 'echo hi'], workingDir: '/tmp', tty: false },
      resources: { memory: 64 * 1024 * 1024, memorySwap: 64 * 1024 * 1024, cpus: 0.5, pids: 32 },
    })
    expect(body.config.labels).toMatchObject({ app: 'demo', 'dockgate.owner': 'admin' })
    expect(body.config.env).toMatchObject({ GREETING: null, SECRET: null })
  })

  it('builds a locked-down HostConfig itself, as the engine confirms', async () => {
    const { body } = await create({ cmd: ['true'] })
    const engine = await engineInspect(body.id)
    expect(engine?.HostConfig).toMatchObject({
      NetworkMode: 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 256,
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      RestartPolicy: { Name: 'no' },
    })
    expect(engine?.HostConfig.Binds).toBeNull()
    expect(engine?.Mounts).toEqual([])
  })

  it('creates and starts with ?start=true', async () => {
    const { status, body } = await create({ cmd: ['sleep', '30'] }, '?start=true')
    expect(status).toBe(201)
    expect(body.state).toMatchObject({ status: 'running', running: true })
    expect(body.state.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/)
  })

  it('refuses an unknown field instead of dropping it, and creates nothing', async () => {
    const probe = uniqueName('probe')
    const { status, body, response } = await create({
      cmd: ['true'],
      labels: { probe },
      HostConfig: { Privileged: true },
    })
    expect(status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(body.type).toBe('urn:dockgate:problem:validation-failed')
    expect(body.invalidParams[0].reason).toMatch(/HostConfig/)
    expect(await engineContainerIds(`probe=${probe}`)).toEqual([])
  })

  it.each([
    ['privileged', { privileged: true }],
    ['a host bind', { binds: ['/:/host'] }],
    ['a mount', { mounts: [{ type: 'bind', source: '/', target: '/host' }] }],
    ['resources beyond the schema', { resources: { memory: 64 * 1024 * 1024, swap: -1 } }],
  ])('refuses %s', async (_what, extra) => {
    const { status, body } = await create({ cmd: ['true'], ...extra })
    expect(status).toBe(400)
    expect(body.type).toBe('urn:dockgate:problem:validation-failed')
  })

  it('refuses a missing body with a problem', async () => {
    const { status, body } = await gw.json('/v1/containers', { method: 'POST' })
    expect(status).toBe(400)
    expect(body.invalidParams.map((p: { name: string }) => p.name)).toContain('json.image')
  })

  it('answers malformed JSON with a malformed-json problem', async () => {
    const { status, body, response } = await gw.json('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"image": ',
    })
    expect(status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(body.type).toBe('urn:dockgate:problem:malformed-json')
  })

  it('answers a wrong content type with 415 problem+json', async () => {
    const { status, body } = await gw.json('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ image: image() }),
    })
    expect(status).toBe(415)
    expect(body.type).toBe('urn:dockgate:problem:unsupported-media-type')
  })

  it('refuses labels in the gateway’s own namespace', async () => {
    const { status, body } = await create({
      cmd: ['true'],
      labels: { 'dockgate.owner': 'someone-else' },
    })
    expect(status).toBe(400)
    expect(body.invalidParams).toEqual([
      { name: 'body.labels.dockgate.owner', reason: 'reserved label prefix' },
    ])
  })

  it('answers 404 for an image the engine does not have (it never pulls)', async () => {
    const { status, body } = await create({ image: 'dockgate-no-such-image:latest' })
    expect(status).toBe(404)
    expect(body.detail).toMatch(/No such image/)
  })

  it('answers 409 when the name is taken', async () => {
    const name = uniqueName('dup')
    expect((await create({ name, cmd: ['true'] })).status).toBe(201)
    const { status, body } = await create({ name, cmd: ['true'] })
    expect(status).toBe(409)
    expect(body.type).toBe('urn:dockgate:problem:conflict')
  })

  it('removes a container that was created but could not start', async () => {
    const name = uniqueName('nostart')
    const { status, body } = await create({ name, cmd: ['/no/such/binary'] }, '?start=true')
    expect(status).toBe(400)
    expect(body.type).toBe('urn:dockgate:problem:bad-request')
    expect(await engineInspect(name)).toBeUndefined()
  })
})

describe('GET /v1/containers', () => {
  it('lists curated summaries filtered by label', async () => {
    const run = uniqueName('list')
    const running = await create({ cmd: ['sleep', '30'], labels: { run } }, '?start=true')
    const exited = await create({ cmd: ['sh', '-c', 'exit 3'], labels: { run } }, '?start=true')
    await gw.call(`/v1/containers/${exited.body.id}/wait`, { method: 'POST' })

    const all = await gw.json(`/v1/containers?all=true&label=run=${run}`)
    expect(all.status).toBe(200)
    const byId = new Map(all.body.containers.map((c: { id: string }) => [c.id, c]))
    expect(byId.size).toBe(2)
    expect(byId.get(running.body.id)).toMatchObject({
      state: 'running',
      exitCode: null,
      image: image(),
    })
    expect(byId.get(exited.body.id)).toMatchObject({ state: 'exited', exitCode: 3 })
    expect(byId.get(exited.body.id)).toMatchObject({ labels: { run } })

    const onlyRunning = await gw.json(`/v1/containers?label=run=${run}`)
    expect(onlyRunning.body.containers.map((c: { id: string }) => c.id)).toEqual([running.body.id])
    const byStatus = await gw.json(`/v1/containers?status=exited&label=run=${run}`)
    expect(byStatus.body.containers.map((c: { id: string }) => c.id)).toEqual([exited.body.id])
  })

  it('requires every repeated label to match', async () => {
    const run = uniqueName('labels')
    const both = await create({ cmd: ['true'], labels: { run, tier: 'a' } })
    await create({ cmd: ['true'], labels: { run } })
    const { body } = await gw.json(`/v1/containers?all=true&label=run=${run}&label=tier`)
    expect(body.containers.map((c: { id: string }) => c.id)).toEqual([both.body.id])
  })

  it('filters by name and limits the count', async () => {
    const name = uniqueName('named')
    await create({ name, cmd: ['true'] })
    const { body } = await gw.json(`/v1/containers?all=true&name=${name}`)
    expect(body.containers).toHaveLength(1)
    expect(body.containers[0].name).toBe(name)
    const limited = await gw.json('/v1/containers?all=true&limit=1')
    expect(limited.body.containers).toHaveLength(1)
  })

  it.each([
    ['status=sleeping', 'query.status'],
    ['limit=0', 'query.limit'],
    ['limit=abc', 'query.limit'],
    ['all=maybe', 'query.all'],
    ['label=%3Dvalue', 'query.label'],
  ])('refuses %s with a validation problem', async (query, param) => {
    const { status, body } = await gw.json(`/v1/containers?${query}`)
    expect(status).toBe(400)
    expect(body.invalidParams.map((p: { name: string }) => p.name)).toContain(param)
  })
})

describe('GET /v1/containers/{id}', () => {
  it('finds a container by name, id and id prefix', async () => {
    const name = uniqueName('inspect')
    const { body: created } = await create({ name, cmd: ['true'] })
    for (const ref of [name, created.id, created.id.slice(0, 12)]) {
      const { status, body } = await gw.json(`/v1/containers/${ref}`)
      expect(status).toBe(200)
      expect(body.id).toBe(created.id)
    }
  })

  it('shows env values only for keys in exposeEnvKeys', async () => {
    const exposing = await testGateway({ settings: { exposeEnvKeys: ['MODE'] } })
    const { body } = await create({ cmd: ['true'], env: { MODE: 'fast', TOKEN: 'hidden' } })
    const { body: detail } = await exposing.json(`/v1/containers/${body.id}`)
    expect(detail.config.env).toEqual({ MODE: 'fast', TOKEN: null })
  })

  it('answers 404 problem for a container that does not exist', async () => {
    const { status, body, response } = await gw.json('/v1/containers/dockgate-missing-container')
    expect(status).toBe(404)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(body).toMatchObject({ type: 'urn:dockgate:problem:not-found', status: 404 })
  })

  it.each(['..%2F..%2Fversion', '%2Fetc', '.hidden', 'a%00b', 'x'.repeat(129), '%E2%9C%93'])(
    'refuses the id %s before it reaches the engine',
    async (ref) => {
      const { status, body } = await gw.json(`/v1/containers/${ref}`)
      expect([400, 404]).toContain(status)
      expect(body.type).toMatch(/^urn:dockgate:problem:(validation-failed|not-found)$/)
    },
  )
})

describe('container actions', () => {
  it('starts, stops, restarts and reports whether anything changed', async () => {
    const { body } = await create({ cmd: ['sleep', '60'] })
    const id = body.id
    const post = (path: string) => gw.json(`/v1/containers/${id}/${path}`, { method: 'POST' })

    expect((await post('start')).body).toEqual({ id, state: 'running', changed: true })
    expect((await post('start')).body).toEqual({ id, state: 'running', changed: false })
    expect((await post('restart?timeout=0')).body).toEqual({ id, state: 'running', changed: true })
    expect((await post('stop?timeout=0')).body).toEqual({ id, state: 'exited', changed: true })
    expect((await post('stop?timeout=0')).body).toEqual({ id, state: 'exited', changed: false })
  })

  it('kills with a signal and refuses an invalid one', async () => {
    const { body } = await create({ cmd: ['sleep', '60'] }, '?start=true')
    const bad = await gw.json(`/v1/containers/${body.id}/kill?signal=NOT%20A%20SIGNAL`, {
      method: 'POST',
    })
    expect(bad.status).toBe(400)
    const engineBad = await gw.json(`/v1/containers/${body.id}/kill?signal=SIGBOGUS`, {
      method: 'POST',
    })
    expect(engineBad.status).toBe(400)
    expect(engineBad.body.detail).toMatch(/signal/i)
    const killed = await gw.json(`/v1/containers/${body.id}/kill?signal=SIGKILL`, {
      method: 'POST',
    })
    expect(killed.status).toBe(200)
    expect(killed.body).toMatchObject({ id: body.id, changed: true })
    expect((await engineInspect(body.id))?.State.Running).toBe(false)
  })

  it('answers 409 when killing a container that is not running', async () => {
    const { body } = await create({ cmd: ['true'] })
    const { status, body: problem } = await gw.json(`/v1/containers/${body.id}/kill`, {
      method: 'POST',
    })
    expect(status).toBe(409)
    expect(problem.type).toBe('urn:dockgate:problem:conflict')
  })

  it('waits for the exit code', async () => {
    const { body } = await create({ cmd: ['sh', '-c', 'sleep 1; exit 7'] }, '?start=true')
    const { status, body: exit } = await gw.json(`/v1/containers/${body.id}/wait`, {
      method: 'POST',
    })
    expect(status).toBe(200)
    expect(exit).toEqual({ exitCode: 7 })
  })

  it('refuses an out-of-range stop timeout', async () => {
    const { status, body } = await gw.json('/v1/containers/whatever/stop?timeout=-1', {
      method: 'POST',
    })
    expect(status).toBe(400)
    expect(body.invalidParams[0].name).toBe('query.timeout')
  })
})

describe('DELETE /v1/containers/{id}', () => {
  it('refuses to remove a running container without force, then removes it with force', async () => {
    const { body } = await create({ cmd: ['sleep', '60'] }, '?start=true')
    const refused = await gw.json(`/v1/containers/${body.id}`, { method: 'DELETE' })
    expect(refused.status).toBe(409)
    expect(await engineInspect(body.id)).toBeDefined()
    const removed = await gw.call(`/v1/containers/${body.id}?force=true`, { method: 'DELETE' })
    expect(removed.status).toBe(204)
    expect(await engineInspect(body.id)).toBeUndefined()
  })

  it('answers 404 for a container that is already gone', async () => {
    const { body } = await create({ cmd: ['true'] })
    await direct(`/containers/${body.id}`, { method: 'DELETE' })
    const { status } = await gw.json(`/v1/containers/${body.id}`, { method: 'DELETE' })
    expect(status).toBe(404)
  })
})

describe('a container whose command does not exist (its own state, never a 5xx)', () => {
  const RUNC_WORDS = /runc|shim|OCI|nonexistent|stat /

  it('answers wait with exit code 127 and a fixed reason, over real HTTP', async () => {
    const served = await serveApp(gw.app)
    try {
      const { body } = await create({ cmd: ['/nonexistent-command'] })
      const headers = { authorization: `Bearer ${tokenOf('admin')}` }
      const started = await fetch(`${served.url}/v1/containers/${body.id}/start`, {
        method: 'POST',
        headers,
      })
      expect(started.status).toBe(400)
      expect(started.headers.get('content-type')).toBe('application/problem+json')
      const problem = await started.json()
      expect(problem.detail).toBe(COMMAND_COULD_NOT_RUN)
      expect(JSON.stringify(problem)).not.toMatch(RUNC_WORDS)

      const waited = await fetch(`${served.url}/v1/containers/${body.id}/wait`, {
        method: 'POST',
        headers,
      })
      expect(waited.status).toBe(200)
      expect(await waited.json()).toEqual({ exitCode: 127, error: COMMAND_NOT_RUNNABLE })

      const restarted = await fetch(`${served.url}/v1/containers/${body.id}/restart?timeout=0`, {
        method: 'POST',
        headers,
      })
      expect(restarted.status).toBe(400)
      expect(restarted.headers.get('content-type')).toBe('application/problem+json')
      const again = await restarted.json()
      expect(again).toMatchObject({
        type: 'urn:dockgate:problem:bad-request',
        detail: COMMAND_COULD_NOT_RUN,
      })
      expect(JSON.stringify(again)).not.toMatch(RUNC_WORDS)
      // The engine agrees about the state the answer describes, and so does inspect.
      expect((await engineInspect(body.id))?.State).toMatchObject({ Running: false, ExitCode: 127 })
      const inspected = await fetch(`${served.url}/v1/containers/${body.id}`, { headers })
      const { state } = await inspected.json()
      expect(state).toMatchObject({ running: false, status: 'created' })
      expect(state.error).not.toBeNull()
    } finally {
      await served.close()
    }
  })
})
