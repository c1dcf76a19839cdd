import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { EngineContainerInspect, parseEngine } from '../../src/engine/types.ts'
import { EventHub } from '../../src/events/hub.ts'
import { ContainerModel } from '../../src/model/containers.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import {
  countingContainerLists,
  createDirect,
  direct,
  runDirect,
  testEngineEnv,
} from '../support/engine.ts'
import { postJson, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

type Row = { id: string; name: string; state: string }

/** What the engine itself lists for a run, as the gateway's summaries name it. */
async function engineRows(run: string): Promise<Row[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`run=${run}`] }))
  const list = (await direct(`/containers/json?all=1&filters=${filters}`)).json() as {
    Id: string
    Names: string[]
    State: string
  }[]
  return list
    .map((c) => ({ id: c.Id, name: c.Names[0]!.slice(1), state: c.State }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

/**
 * A model on its own hub over the test engine's socket, recording which containers it inspects;
 * `hold(id)` keeps the engine's answers to inspects of that container (already answered by the
 * engine: `answered` resolves then) from the model until `release()`.
 */
async function watchedModel() {
  const inner = createNodeTransport(
    engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
  )
  const inspected: string[] = []
  let held: { id: string; gate: Promise<void>; open: () => void; answered: () => void } | undefined
  const transport: EngineTransport = {
    description: inner.description,
    close: () => inner.close(),
    async fetch(request, options) {
      const ref = /^(?:\/v[\d.]+)?\/containers\/([^/]+)\/json$/.exec(
        new URL(request.url).pathname,
      )?.[1]
      if (ref) inspected.push(ref)
      const response = await inner.fetch(request, options)
      if (ref !== undefined && ref === held?.id) {
        const { gate, answered } = held
        answered()
        await gate
      }
      return response
    },
  }
  const engine = new EngineClient(transport)
  const hub = new EventHub(engine)
  const model = new ContainerModel(engine, hub)
  await model.start()
  return {
    model,
    hub,
    /** How many times the model asked the engine for this container since the last call. */
    inspectsOf(id: string) {
      const count = inspected.filter((ref) => ref === id).length
      inspected.length = 0
      return count
    },
    /** Holds the model's next inspects of `id`; resolves once the engine answered the first one. */
    hold(id: string): Promise<void> {
      let open!: () => void
      let answered!: () => void
      const gate = new Promise<void>((resolve) => (open = resolve))
      const engineAnswered = new Promise<void>((resolve) => (answered = resolve))
      held = { id, gate, open, answered }
      return engineAnswered
    },
    release() {
      held?.open()
      held = undefined
    },
    async close() {
      model.close()
      hub.close()
      await transport.close()
    },
  }
}

const renameDirect = (id: string, name: string) =>
  direct(`/containers/${id}/rename?name=${name}`, { method: 'POST' })

describe('the container read model', () => {
  it('answers lists from memory once loaded, not by asking the engine', async () => {
    const { transport, counter } = countingContainerLists()
    const gw = await testGateway({ transport })
    // Until the model has loaded, lists fall back to the engine.
    const listCalls = async () => {
      const before = counter.lists
      await gw.json('/v1/containers?all=true')
      return counter.lists - before
    }
    await expect.poll(listCalls, { timeout: 10_000 }).toBe(0)
    const before = counter.lists
    for (let i = 0; i < 10; i++)
      expect((await gw.json('/v1/containers?all=true&limit=5')).status).toBe(200)
    expect(counter.lists).toBe(before)
  })

  it('answers a full id or a name from memory, and leaves an id prefix to the engine', async () => {
    const inner = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
    )
    const inspected: string[] = []
    const transport: EngineTransport = {
      description: inner.description,
      close: () => inner.close(),
      fetch(request, options) {
        const url = new URL(request.url)
        const ref = /^(?:\/v[\d.]+)?\/containers\/([^/]+)\/json$/.exec(url.pathname)?.[1]
        if (ref) inspected.push(ref)
        // An id prefix is looked up in the engine's list, by its id filter.
        const filters = url.searchParams.get('filters')
        if (filters) inspected.push(...((JSON.parse(filters) as { id?: string[] }).id ?? []))
        return inner.fetch(request, options)
      },
    }
    const gw = await testGateway({ transport })
    const name = uniqueName('ref')
    const { body } = await gw.json(
      '/v1/containers',
      postJson({
        image: testEngineEnv().image,
        name,
        cmd: ['true'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    )
    const id = body.id as string
    // The model re-inspects containers on their events (other tests' too): count by reference
    const engineAskedFor = async (ref: string) => {
      inspected.length = 0
      expect((await gw.json(`/v1/containers/${ref}`)).body.id).toBe(id)
      return inspected.filter((asked) => asked === ref).length
    }
    // Once the model is loaded, a full id and a name need no engine call
    await expect.poll(() => engineAskedFor(id), { timeout: 10_000 }).toBe(0)
    expect(await engineAskedFor(name)).toBe(0)
    // A prefix the model knows as unique may not be unique on the engine: the engine's list decides
    expect(await engineAskedFor(id.slice(0, 12))).toBe(1)
    await gw.call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })
  })

  it('keeps what a route put while it loaded: a list taken before a create does not hide it', async () => {
    const inner = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
    )
    // The model's list reaches the engine at once, but its answer waits for the test
    let listed!: () => void
    const listAnswered = new Promise<void>((resolve) => (listed = resolve))
    let listSent!: () => void
    const listIsOut = new Promise<void>((resolve) => (listSent = resolve))
    const transport: EngineTransport = {
      description: inner.description,
      close: () => inner.close(),
      async fetch(request, options) {
        const response = await inner.fetch(request, options)
        if (!new URL(request.url).pathname.endsWith('/containers/json')) return response
        listSent()
        await listAnswered
        return response
      },
    }
    const engine = new EngineClient(transport)
    const hub = new EventHub(engine)
    const model = new ContainerModel(engine, hub)
    try {
      const loaded = model.start()
      await listIsOut
      // What a create route does: the container, then read-your-writes into the model
      const id = await createDirect({
        name: uniqueName('load'),
        cmd: ['true'],
        labels: { [TEST_LABEL]: TEST_RUN },
      })
      model.put(
        parseEngine(EngineContainerInspect, (await direct(`/containers/${id}/json`)).json(), 'c'),
      )
      listed()
      await loaded
      // Right away: the create's event (queued meanwhile) has not been applied yet
      expect(model.get(id)?.Id).toBe(id)
      expect(model.list({ all: true }).map((c) => c.Id)).toContain(id)
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    } finally {
      model.close()
      hub.close()
      await transport.close()
    }
  })

  it('reads its own writes: a container created through the gateway is listed at once', async () => {
    const gw = await testGateway()
    await gw.json('/v1/containers?all=true')
    const run = uniqueName('ryw')
    const { body } = await gw.json(
      '/v1/containers?start=true',
      postJson({
        image: testEngineEnv().image,
        name: run,
        cmd: ['sleep', '30'],
        labels: { [TEST_LABEL]: TEST_RUN, run },
      }),
    )
    const listed = (await gw.json(`/v1/containers?label=run=${run}`)).body.containers
    expect(listed).toEqual([expect.objectContaining({ id: body.id, state: 'running' })])
    const stopped = await gw.json(`/v1/containers/${body.id}/stop?timeout=0`, { method: 'POST' })
    expect(stopped.body.state).toBe('exited')
    expect((await gw.json(`/v1/containers/${body.id}`)).body.state.status).toBe('exited')
    await gw.call(`/v1/containers/${body.id}?force=true`, { method: 'DELETE' })
    expect((await gw.json(`/v1/containers?all=true&label=run=${run}`)).body.containers).toEqual([])
  })

  it('matches the engine’s own list after every step of random changes, through the gateway or around it', async () => {
    const gw = await testGateway()
    const run = uniqueName('model')
    const labels = { [TEST_LABEL]: TEST_RUN, run }
    const ids: string[] = []
    const pick = (n: number) => ids[n % ids.length]
    const modelRows = async (): Promise<Row[]> =>
      (
        (await gw.json(`/v1/containers?all=true&label=run=${run}`)).body.containers as {
          id: string
          name: string
          state: string
        }[]
      )
        .map(({ id, name, state }) => ({ id, name, state }))
        .sort((a, b) => a.id.localeCompare(b.id))

    const step = fc.oneof(
      fc.record({
        op: fc.constant('create'),
        via: fc.constantFrom('gateway', 'engine'),
        start: fc.boolean(),
      }),
      fc.record({
        op: fc.constantFrom('start', 'stop', 'kill', 'rename', 'remove'),
        via: fc.constantFrom('gateway', 'engine'),
        n: fc.nat(),
      }),
    )
    const steps = fc.sample(step, { numRuns: 24, seed: 20261129 })
    for (const s of steps) {
      if (s.op === 'create' || ids.length === 0) {
        const name = uniqueName('m')
        if (s.via === 'gateway') {
          const { body } = await gw.json(
            `/v1/containers${'start' in s && s.start ? '?start=true' : ''}`,
            postJson({ image: testEngineEnv().image, name, cmd: ['sleep', '60'], labels }),
          )
          ids.push(body.id)
        } else {
          const created = await direct(`/containers/create?name=${name}`, {
            method: 'POST',
            body: {
              Image: testEngineEnv().image,
              Cmd: ['sleep', '60'],
              Labels: labels,
              HostConfig: { NetworkMode: 'none' },
            },
          })
          const id = (created.json() as { Id: string }).Id
          if ('start' in s && s.start) await direct(`/containers/${id}/start`, { method: 'POST' })
          ids.push(id)
        }
      } else {
        const id = pick('n' in s ? s.n : 0)!
        const viaGateway = s.via === 'gateway' && s.op !== 'rename'
        if (s.op === 'remove') {
          if (viaGateway) await gw.call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })
          else await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
          ids.splice(ids.indexOf(id), 1)
        } else if (s.op === 'rename') {
          await direct(`/containers/${id}/rename?name=${uniqueName('renamed')}`, { method: 'POST' })
        } else {
          const query = s.op === 'stop' ? '?t=0' : ''
          if (viaGateway)
            await gw.call(`/v1/containers/${id}/${s.op}${s.op === 'stop' ? '?timeout=0' : ''}`, {
              method: 'POST',
            })
          else await direct(`/containers/${id}/${s.op}${query}`, { method: 'POST' })
        }
      }
      await expect.poll(modelRows, { timeout: 5_000, interval: 50 }).toEqual(await engineRows(run))
    }
  }, 120_000)

  it('takes a rename from its event alone when it holds the container at the old name', async () => {
    const watched = await watchedModel()
    const { model } = watched
    try {
      const run = uniqueName('rename')
      const id = await createDirect({
        name: run,
        cmd: ['true'],
        labels: { [TEST_LABEL]: TEST_RUN, run },
      })
      await expect.poll(() => model.get(id)?.Name, { timeout: 5_000 }).toBe(`/${run}`)
      await model.idle()
      watched.inspectsOf(id)
      const renamed = uniqueName('renamed')
      await renameDirect(id, renamed)
      await expect.poll(() => model.get(id)?.Name, { timeout: 5_000 }).toBe(`/${renamed}`)
      await model.idle()
      expect(watched.inspectsOf(id)).toBe(0)
      // The list answered from it is the engine's own
      expect(model.list({ all: true, label: [`run=${run}`] })).toEqual([
        parseEngine(EngineContainerInspect, (await direct(`/containers/${id}/json`)).json(), 'c'),
      ])
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    } finally {
      await watched.close()
    }
  })

  it('takes exec and kill events without inspecting: they change nothing a view shows', async () => {
    const watched = await watchedModel()
    const { model } = watched
    try {
      const run = uniqueName('exec-events')
      const id = await runDirect({
        name: run,
        cmd: ['sh', '-c', 'trap "" HUP; sleep 600'],
        labels: { [TEST_LABEL]: TEST_RUN, run },
        wait: false,
      })
      await expect.poll(() => model.get(id)?.State.Status, { timeout: 5_000 }).toBe('running')
      await model.idle()
      watched.inspectsOf(id)
      const created = (await direct(`/containers/${id}/exec`, {
        method: 'POST',
        body: { Cmd: ['true'], AttachStdout: true },
      }).then((answer) => answer.json())) as { Id: string }
      expect((await direct(`/exec/${created.Id}/start`, { method: 'POST', body: {} })).status).toBe(
        200,
      )
      // A signal the process ignores: a kill event, and the container runs on
      expect((await direct(`/containers/${id}/kill?signal=HUP`, { method: 'POST' })).status).toBe(
        204,
      )
      // Events come in order: once the rename after them is in, so are they
      const renamed = uniqueName('exec-events-renamed')
      await renameDirect(id, renamed)
      await expect.poll(() => model.get(id)?.Name, { timeout: 5_000 }).toBe(`/${renamed}`)
      await model.idle()
      expect(watched.inspectsOf(id)).toBe(0)
      expect(
        model.list({ all: true, label: [`run=${run}`] }).map((c) => [c.Name, c.State.Status]),
      ).toEqual([[`/${renamed}`, 'running']])
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    } finally {
      await watched.close()
    }
  })

  it('re-inspects a rename whose event may not say all that changed', async () => {
    const watched = await watchedModel()
    const { model } = watched
    const created: string[] = []
    try {
      // A label named `oldName` stands in for the event's own attribute (labels are copied in
      // first): here it even names the container's real name
      const labelled = uniqueName('oldname')
      created.push(
        await createDirect({
          name: labelled,
          cmd: ['true'],
          labels: { [TEST_LABEL]: TEST_RUN, oldName: `/${labelled}` },
        }),
      )
      // A container with a legacy link: its own link's alias holds its name
      const target = uniqueName('target')
      created.push(
        await createDirect({ name: target, cmd: ['true'], labels: { [TEST_LABEL]: TEST_RUN } }),
      )
      const parent = uniqueName('parent')
      const linked = await direct(`/containers/create?name=${parent}`, {
        method: 'POST',
        body: {
          Image: testEngineEnv().image,
          Cmd: ['true'],
          Labels: { [TEST_LABEL]: TEST_RUN },
          HostConfig: { Links: [`${target}:alias`] },
        },
      })
      created.push((linked.json() as { Id: string }).Id)
      for (const id of [created[0]!, created[2]!]) {
        await expect.poll(() => model.get(id)?.Id, { timeout: 5_000 }).toBe(id)
        await model.idle()
        watched.inspectsOf(id)
        const renamed = uniqueName('renamed')
        await renameDirect(id, renamed)
        await expect.poll(() => model.get(id)?.Name, { timeout: 5_000 }).toBe(`/${renamed}`)
        await model.idle()
        expect(watched.inspectsOf(id)).toBeGreaterThan(0)
        expect(model.get(id)).toEqual(
          parseEngine(EngineContainerInspect, (await direct(`/containers/${id}/json`)).json(), 'c'),
        )
      }
      expect(model.get(created[2]!)?.HostConfig.Links).toEqual([
        `/${target}:${model.get(created[2]!)?.Name}/alias`,
      ])
    } finally {
      for (const id of created.reverse())
        await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
      await watched.close()
    }
  })

  it('re-inspects a rename that comes while an answer from before it is on its way', async () => {
    const watched = await watchedModel()
    const { model } = watched
    try {
      const name = uniqueName('held')
      const id = await createDirect({
        name,
        cmd: ['sleep', '30'],
        labels: { [TEST_LABEL]: TEST_RUN },
      })
      await expect.poll(() => model.get(id)?.Name, { timeout: 5_000 }).toBe(`/${name}`)
      await model.idle()
      // The start's inspection is answered by the engine before the rename, and reaches the
      // model only after the rename's event
      const answered = watched.hold(id)
      await direct(`/containers/${id}/start`, { method: 'POST' })
      await answered
      const renamed = uniqueName('renamed')
      const seen = watched.hub.subscribe({ filter: { type: ['container'], container: [id] } })
      await renameDirect(id, renamed)
      for (
        let item = await seen.next();
        item?.kind !== 'event' || item.event.action !== 'rename';
      ) {
        item = await seen.next()
      }
      seen.close()
      // The model is woken by the same event: give it a turn to take it in
      await new Promise((resolve) => setTimeout(resolve, 50))
      watched.release()
      await model.idle()
      expect(model.get(id)?.Name).toBe(`/${renamed}`)
      expect(model.get(id)?.State.Running).toBe(true)
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    } finally {
      watched.release()
      await watched.close()
    }
  })

  it('can be switched off: every list then asks the engine', async () => {
    const { transport, counter } = countingContainerLists()
    const gw = await testGateway({ transport, settings: { readModel: false } })
    const before = counter.lists
    await gw.json('/v1/containers?all=true')
    await gw.json('/v1/containers?all=true')
    expect(counter.lists).toBe(before + 2)
  })
})
