/**
 * Pulls and removals against the real engine and two real registries (scripts/registry.sh: one
 * open, one with basic auth). Each run pushes an image of its own (a fresh random layer) under a
 * repository name of its own, so a pull really downloads, and parallel runs never share a name.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import type { RequestLogEntry } from '../../src/http/observability.ts'
import { createDirect, direct, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { freePort } from '../support/net.ts'
import {
  deleteFromRegistry,
  deleteLastLayerBlob,
  pushUniqueImage,
  type TestRegistries,
  testRegistries,
} from '../support/registry.ts'
import {
  engineEvents,
  engineNow,
  recordingTransport,
  type SpawnedGateway,
  scratchDir,
  spawnGateway,
  tagged,
} from '../support/reliability.ts'
import { readSse } from '../support/sse.ts'

const RUN = `pull-${process.pid}-${Date.now().toString(36)}`
/**
 * Not under a `dockgate` name: test/reliability/hostile-input.test.ts, running beside this file,
 * counts every image event that names "dockgate" as one of its own.
 */
const REPOSITORY = `gw-images-test/${RUN}`
const TAG = 'v1'
const LAYER_BYTES = 3_000_000
const HEX64 = 'a'.repeat(64)

let registries: TestRegistries
let gw: TestGateway
const recorder = recordingTransport()
const audit: AuditEntry[] = []
const requestLog: RequestLogEntry[] = []
const errors: unknown[] = []
let openRef: string
let authRef: string
let requests = 0

beforeAll(async () => {
  registries = testRegistries()
  openRef = `${registries.open}/${REPOSITORY}:${TAG}`
  authRef = `${registries.auth}/${REPOSITORY}:${TAG}`
  // One image per registry, each with a random layer of its own: each pull downloads.
  await pushUniqueImage({
    registries: [{ host: registries.open, auth: {} }],
    repository: REPOSITORY,
    tag: TAG,
    bytes: LAYER_BYTES,
  })
  await pushUniqueImage({
    registries: [
      {
        host: registries.auth,
        auth: {
          username: registries.user,
          password: registries.password,
          serveraddress: registries.auth,
        },
      },
    ],
    repository: REPOSITORY,
    tag: TAG,
    bytes: LAYER_BYTES,
  })
  gw = await testGateway({
    transport: recorder.transport,
    audit,
    requestLog,
    errors,
    settings: {
      registries: {
        [registries.open]: {},
        [registries.auth]: { username: registries.user, password: registries.password },
      },
    },
    clients: {
      auditor: { scopes: ['images:write'], policy: { mode: 'audit', images: [] } },
      puller: {
        scopes: ['images:read', 'images:write'],
        policy: {
          images: [`${registries.open}/${REPOSITORY}:*`, `${registries.auth}/${REPOSITORY}:*`],
        },
      },
    },
  })
}, 60_000)

afterAll(async () => {
  for (const ref of [openRef, authRef]) await direct(`/images/${ref}`, { method: 'DELETE' })
  await deleteFromRegistry(registries.open, REPOSITORY, TAG)
  await deleteFromRegistry(registries.auth, REPOSITORY, TAG, registries)
})

/** A pull as `role`, with the engine calls made for it. */
async function pull(ref: unknown, role = 'puller', extra: Record<string, unknown> = {}) {
  const tag = `pull${requests++}`
  const response = await tagged(tag, () =>
    gw.call('/v1/images/pull', postJson({ ref, ...extra }, role)),
  )
  const text = await response.text()
  return {
    status: response.status,
    body: text ? JSON.parse(text) : undefined,
    contentType: response.headers.get('content-type'),
    calls: recorder.calls.filter((c) => c.tag === tag),
  }
}

const engineHas = async (ref: string) => (await direct(`/images/${ref}/json`)).status === 200

/** Runs `batch`, then proves through the engine's own event log that no image event happened. */
async function nothingReachedTheEngine(batch: () => Promise<void>) {
  const since = engineNow()
  await batch()
  await new Promise((r) => setTimeout(r, 100))
  const events = await engineEvents(since, engineNow())
  expect(events.filter((e) => e.Type === 'image').map((e) => `${e.Action} ${e.Actor.ID}`)).toEqual(
    [],
  )
}

describe('POST /v1/images/pull', () => {
  it('pulls from the open registry and answers JSON once done', async () => {
    const answer = await pull(openRef)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(answer.body).toEqual({
      ref: openRef,
      id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      upToDate: false,
    })
    const engine = (await direct(`/images/${openRef}/json`)).json() as { Id: string }
    expect(engine.Id).toBe(answer.body.id)
    // Again: the engine has it already.
    const again = await pull(openRef)
    expect(again.body).toMatchObject({ id: answer.body.id, upToDate: true })
  }, 60_000)

  it('pulls from the registry with basic auth as server-sent events: progress, then end', async () => {
    const started = Date.now()
    const response = await gw.call('/v1/images/pull', {
      ...postJson({ ref: authRef }, 'puller'),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = await readSse(response).until('end', 60_000)
    const elapsed = Date.now() - started
    const progress = events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data))
    const end = events.at(-1)!
    expect(end.event, JSON.stringify(events)).toBe('end')
    expect(JSON.parse(end.data)).toEqual({
      ref: authRef,
      id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      upToDate: false,
    })
    expect(progress.length).toBeGreaterThan(0)
    // Throttled: at most one every 250 ms, and the last one once done.
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2)
    const last = progress.at(-1)
    expect(last.overall.layers).toBeGreaterThan(0)
    expect(last.overall.layersDone).toBe(last.overall.layers)
    // The run's own layer was downloaded: its size is known and counted whole.
    const downloaded = last.layers.filter((l: { total: number | null }) => l.total !== null)
    expect(downloaded.length).toBeGreaterThan(0)
    expect(last.overall.total).toBeGreaterThan(LAYER_BYTES / 2)
    expect(last.overall.current).toBe(last.overall.total)
    expect(await engineHas(authRef)).toBe(true)
  }, 60_000)

  it('answers 404 for an image the registry does not have', async () => {
    const answer = await pull(`${registries.open}/${REPOSITORY}:nope`)
    expect(answer.status).toBe(404)
    expect(answer.contentType).toBe('application/problem+json')
    expect(answer.body).toMatchObject({
      type: 'urn:dockgate:problem:not-found',
      detail: `No such image: ${registries.open}/${REPOSITORY}:nope`,
    })
  })

  it('needs images:write', async () => {
    const answer = await pull(openRef, 'reader')
    expect(answer.status).toBe(403)
    expect(answer.calls).toEqual([])
  })

  it('refuses an image the policy does not allow, and nothing reaches the engine', async () => {
    await nothingReachedTheEngine(async () => {
      const answer = await pull(`${registries.open}/gw-images-test/other-${RUN}:${TAG}`)
      expect(answer.status).toBe(403)
      expect(answer.body.type).toBe('urn:dockgate:problem:forbidden')
      expect(answer.calls).toEqual([])
    })
    expect(audit).toContainEqual(
      expect.objectContaining({
        principal: 'puller',
        decision: 'deny',
        reason: 'image-not-allowed',
      }),
    )
  })

  it('in audit mode, records would_deny and pulls; an unconfigured registry is refused all the same', async () => {
    const answer = await pull(openRef, 'auditor')
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(audit).toContainEqual(
      expect.objectContaining({ principal: 'auditor', decision: 'would_deny', target: openRef }),
    )
    await nothingReachedTheEngine(async () => {
      const refused = await pull(`127.0.0.1:9/${REPOSITORY}:${TAG}`, 'auditor')
      expect(refused.status).toBe(403)
      expect(refused.calls).toEqual([])
    })
    expect(audit).toContainEqual(
      expect.objectContaining({
        principal: 'auditor',
        decision: 'deny',
        reason: 'registry-not-configured',
      }),
    )
  }, 60_000)

  it('refuses a digest the policy does not allow, and nothing reaches the engine', async () => {
    await nothingReachedTheEngine(async () => {
      const answer = await pull(`${registries.open}/${REPOSITORY}@sha256:${HEX64}`)
      expect(answer.status).toBe(403)
      expect(answer.calls).toEqual([])
    })
  })

  it('refuses a registry host not in the configuration, even for an admin', async () => {
    await nothingReachedTheEngine(async () => {
      for (const ref of [
        `127.0.0.1:9/${REPOSITORY}:${TAG}`,
        'busybox:latest',
        `registry.invalid/x:1`,
      ]) {
        const answer = await pull(ref, 'admin')
        expect(answer.status, ref).toBe(403)
        expect(answer.body.detail, ref).toMatch(
          /^Pulls from \S+ are not configured on this gateway$/,
        )
        expect(answer.calls, ref).toEqual([])
      }
    })
  })

  it('refuses bad bodies with 400, and nothing reaches the engine', async () => {
    await nothingReachedTheEngine(async () => {
      const cases: [unknown, Record<string, unknown>][] = [
        [openRef, { force: true }],
        [openRef, { auth: { username: 'x' } }],
        ['', {}],
        ['Upper:1', {}],
        ['a/../b:1', {}],
        [`${openRef}\u0000`, {}],
        [`sha256:${HEX64}`, {}],
        [HEX64, {}],
        [42, {}],
        [`${'a'.repeat(300)}:1`, {}],
      ]
      for (const [ref, extra] of cases) {
        const answer = await pull(ref, 'admin', extra)
        expect(answer.status, JSON.stringify(ref)).toBe(400)
        expect(answer.body.type).toBe('urn:dockgate:problem:validation-failed')
        expect(answer.calls).toEqual([])
      }
    })
  })

  it('never shows the registry password in answers, audit lines, request logs or errors', () => {
    const everything = JSON.stringify({ audit, requestLog, errors: errors.map(String) })
    expect(everything).not.toContain(registries.password)
  })
})

describe('POST /v1/images/pull: the registry says no', () => {
  let wrong: TestGateway
  let closedPort: number
  const wrongAudit: AuditEntry[] = []
  const wrongLog: RequestLogEntry[] = []
  const wrongErrors: unknown[] = []
  const WRONG_PASSWORD = `wrong-${RUN}`

  beforeAll(async () => {
    closedPort = await freePort()
    wrong = await testGateway({
      audit: wrongAudit,
      requestLog: wrongLog,
      errors: wrongErrors,
      settings: {
        registries: {
          [registries.auth]: { username: registries.user, password: WRONG_PASSWORD },
          [registries.open]: {},
          [`127.0.0.1:${closedPort}`]: {},
        },
      },
    })
  })

  const pullAs = async (ref: string) => {
    const response = await wrong.call('/v1/images/pull', postJson({ ref }))
    return {
      status: response.status,
      text: await response.text(),
      type: response.headers.get('content-type'),
    }
  }

  it('answers 403 registry-denied when the registry refuses the credentials', async () => {
    const answer = await pullAs(`${registries.auth}/${REPOSITORY}:${TAG}-absent`)
    expect(answer.status, answer.text).toBe(403)
    expect(answer.type).toBe('application/problem+json')
    expect(JSON.parse(answer.text)).toMatchObject({ type: 'urn:dockgate:problem:registry-denied' })
    expect(answer.text).not.toContain(WRONG_PASSWORD)
    expect(answer.text).not.toContain('unauthorized')
  })

  it('answers 502 registry-unavailable for a registry nothing listens on', async () => {
    const answer = await pullAs(`127.0.0.1:${closedPort}/${REPOSITORY}:${TAG}`)
    expect(answer.status, answer.text).toBe(502)
    const body = JSON.parse(answer.text)
    expect(body).toMatchObject({
      type: 'urn:dockgate:problem:registry-unavailable',
      detail: `The registry of 127.0.0.1:${closedPort}/${REPOSITORY}:${TAG} cannot be reached`,
    })
    // No registry internals: no URL, no dial error.
    expect(answer.text).not.toMatch(/dial|connection refused|\/v2\//)
  })

  it('as an event stream too, the failure is a problem answer before any event', async () => {
    const response = await wrong.call('/v1/images/pull', {
      ...postJson({ ref: `127.0.0.1:${closedPort}/${REPOSITORY}:${TAG}` }),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(response.status).toBe(502)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    await response.body?.cancel()
  })

  it('never shows the wrong password in audit lines, request logs or errors', () => {
    const everything = JSON.stringify({
      wrongAudit,
      wrongLog,
      errors: wrongErrors.map((e) => `${String(e)} ${String((e as Error).cause ?? '')}`),
    })
    expect(everything).not.toContain(WRONG_PASSWORD)
    expect(everything).not.toContain(registries.password)
  })
})

describe('DELETE /v1/images/{ref}', () => {
  it('removes an image the policy allows, by its reference', async () => {
    if (!(await engineHas(openRef))) expect((await pull(openRef)).status).toBe(200)
    const { status, body } = await gw.json(`/v1/images/${encodeURIComponent(openRef)}`, {
      method: 'DELETE',
      role: 'puller',
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.untagged).toContain(openRef)
    expect(await engineHas(openRef)).toBe(false)
  }, 60_000)

  it('answers 404 for an image the policy does not allow, and leaves it', async () => {
    await nothingReachedTheEngine(async () => {
      const { status } = await gw.json(`/v1/images/${encodeURIComponent(testEngineEnv().image)}`, {
        method: 'DELETE',
        role: 'puller',
      })
      expect(status).toBe(404)
    })
    expect(await engineHas(testEngineEnv().image)).toBe(true)
  })

  it('answers 404 for an image the engine does not have', async () => {
    const { status, body } = await gw.json(
      `/v1/images/${encodeURIComponent(`${registries.open}/${REPOSITORY}:gone`)}`,
      { method: 'DELETE', role: 'puller' },
    )
    expect(status).toBe(404)
    expect(body.type).toBe('urn:dockgate:problem:not-found')
  })

  it('needs images:write', async () => {
    const { status } = await gw.json(`/v1/images/${encodeURIComponent(authRef)}`, {
      method: 'DELETE',
      role: 'reader',
    })
    expect(status).toBe(403)
    expect(await engineHas(authRef)).toBe(true)
  })

  it('answers 409 for an image a container uses, in the caller’s words', async () => {
    const created = await direct(`/containers/create?name=uses-${RUN}`, {
      method: 'POST',
      body: { Image: authRef, Cmd: ['true'], Labels: { [TEST_LABEL]: TEST_RUN } },
    })
    expect(created.status, created.text).toBe(201)
    const id = (created.json() as { Id: string }).Id
    try {
      const { status, body } = await gw.json(`/v1/images/${encodeURIComponent(authRef)}`, {
        method: 'DELETE',
        role: 'puller',
      })
      expect(status).toBe(409)
      expect(body.detail).toMatch(/^The image is in use by a container/)
      expect(JSON.stringify(body)).not.toContain(id.slice(0, 12))
      expect(await engineHas(authRef)).toBe(true)
    } finally {
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    }
  })

  it('removes by id an image whose every name the policy allows (its digest names by their tags)', async () => {
    const image = (await direct(`/images/${authRef}/json`)).json() as {
      Id: string
      RepoDigests: string[]
    }
    expect(image.RepoDigests.length).toBeGreaterThan(0)
    const { status, body } = await gw.json(`/v1/images/${image.Id.slice(7, 19)}`, {
      method: 'DELETE',
      role: 'puller',
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.deleted).toContain(image.Id)
    expect(await engineHas(authRef)).toBe(false)
  })

  it('answers 404 to a removal by id of an image with no name, which no policy lets anyone see', async () => {
    // A commit without a repository: an image of nobody's name (as one whose tag moved on).
    const container = await createDirect({ name: uniqueName('nameless'), cmd: ['true'] })
    const committed = await direct(`/commit?container=${container}`, { method: 'POST' })
    await direct(`/containers/${container}?force=1`, { method: 'DELETE' })
    const { Id: id } = committed.json() as { Id: string }
    try {
      expect((await gw.json(`/v1/images/${id}`, { role: 'puller' })).status).toBe(404)
      const removed = await gw.json(`/v1/images/${id}`, { method: 'DELETE', role: 'puller' })
      expect(removed.status).toBe(404)
      expect(removed.body.detail).toBe(`No such image: ${id}`)
      expect((await direct(`/images/${id}/json`)).status).toBe(200)
    } finally {
      await direct(`/images/${id}?force=1`, { method: 'DELETE' })
    }
  })
})

describe('the Node entry, configured from a file', () => {
  let node: SpawnedGateway | undefined
  let dir: string | undefined
  const WRONG_PASSWORD = `wrong-in-file-${RUN}`
  afterAll(() => {
    node?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('pulls with the credentials of its config file, takes new ones on a reload, and its output never holds a password', async () => {
    dir = scratchDir('dockgate-pull')
    const closed = await freePort()
    node = await spawnGateway({
      dir,
      config: {
        registries: {
          [registries.open]: {},
          [registries.auth]: { username: registries.user, password: WRONG_PASSWORD },
          [`127.0.0.1:${closed}`]: { username: registries.user, password: registries.password },
        },
      },
      env: { DOCKGATE_TOKEN: tokenOf('admin') },
    })
    const pullThere = async (ref: string) => {
      const response = await fetch(`${node!.url}/v1/images/pull`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokenOf('admin')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ ref }),
      })
      return { status: response.status, text: await response.text() }
    }
    const denied = await pullThere(`${registries.auth}/${REPOSITORY}:${TAG}`)
    expect(denied.status, denied.text).toBe(403)
    const unreachable = await pullThere(`127.0.0.1:${closed}/${REPOSITORY}:${TAG}`)
    expect(unreachable.status, unreachable.text).toBe(502)
    const missing = await pullThere(`${registries.open}/${REPOSITORY}:absent`)
    expect(missing.status, missing.text).toBe(404)
    // A reload with the right password: registries are a live setting.
    const config = {
      registries: {
        [registries.open]: {},
        [registries.auth]: { username: registries.user, password: registries.password },
      },
    }
    writeFileSync(join(dir, `config-${node.port}.json`), JSON.stringify(config), { mode: 0o600 })
    const reloaded = Date.now() + 10_000
    while (!node.output().includes('config reloaded') && Date.now() < reloaded) {
      await new Promise((r) => setTimeout(r, 50))
    }
    const pulled = await pullThere(`${registries.auth}/${REPOSITORY}:${TAG}`)
    expect(pulled.status, pulled.text).toBe(200)
    await direct(`/images/${registries.auth}/${REPOSITORY}:${TAG}`, { method: 'DELETE' })
    await new Promise((r) => setTimeout(r, 200))
    const output = node.output()
    // Its request and audit lines are there, and the failures' causes are logged …
    expect(output).toContain('/v1/images/pull')
    expect(output).toMatch(/pull of .* failed/)
    // … but no password, wrong or right, in any of it, nor in an answer.
    for (const text of [output, denied.text, unreachable.text, missing.text, pulled.text]) {
      expect(text).not.toContain(WRONG_PASSWORD)
      expect(text).not.toContain(registries.password)
    }
  }, 60_000)
})

describe('POST /v1/images/pull: a client that leaves', () => {
  const BIG = 'big'
  let bigRef: string

  beforeAll(async () => {
    bigRef = `${registries.open}/${REPOSITORY}:${BIG}`
    await pushUniqueImage({
      registries: [{ host: registries.open, auth: {} }],
      repository: REPOSITORY,
      tag: BIG,
      bytes: 20_000_000,
    })
  }, 120_000)

  afterAll(async () => {
    await direct(`/images/${bigRef}`, { method: 'DELETE' })
    await deleteFromRegistry(registries.open, REPOSITORY, BIG)
  })

  it('closes the engine call when the event-stream client hangs up, and the engine stops the pull', async () => {
    // Counted once the gateway's own calls (its read model's, after earlier tests' events) are
    // over: one still open at the count and closed during the pull made it one short (ci37).
    const before = await settledEngineConnections(gw)
    const response = await gw.call('/v1/images/pull', {
      ...postJson({ ref: bigRef }, 'puller'),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(response.status).toBe(200)
    const reader = readSse(response)
    const first = await reader.next(30_000)
    expect(first?.event).toBe('progress')
    await reader.close()
    const deadline = Date.now() + 5_000
    while (gw.metrics.engineConnections > before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(gw.metrics.engineConnections).toBe(before)
    // The engine stops a pull whose caller hung up (docs/engine-notes.md#image-pull): one event
    // into a 20 MB layer it is far from done, and nothing of it is left as an image.
    await new Promise((r) => setTimeout(r, 2_000))
    expect(await engineHas(bigRef)).toBe(false)
  }, 60_000)
})

/** The gateway's open engine calls once the count held for 300 ms (or after 5 s, as it is). */
async function settledEngineConnections(gateway: TestGateway): Promise<number> {
  const deadline = Date.now() + 5_000
  let count = gateway.metrics.engineConnections
  let heldSince = Date.now()
  while (Date.now() - heldSince < 300 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    const now = gateway.metrics.engineConnections
    if (now !== count) {
      count = now
      heldSince = Date.now()
    }
  }
  return count
}

/**
 * A pull asked for as an event stream that fails once it has begun: it answers 200, streams
 * progress, and ends with exactly one problem event and no `end`. Its events and that problem.
 */
async function failedPullStream(gateway: TestGateway, ref: string, waitMs: number) {
  const response = await gateway.call('/v1/images/pull', {
    ...postJson({ ref }),
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
  })
  expect(response.status).toBe(200)
  const events = await readSse(response).rest(waitMs)
  const names = events.map((e) => e.event)
  expect(names[0], JSON.stringify(events)).toBe('progress')
  expect(names.at(-1), JSON.stringify(events)).toBe('problem')
  expect(names).not.toContain('end')
  expect(names.filter((name) => name === 'problem')).toHaveLength(1)
  return { events, problem: JSON.parse(events.at(-1)?.data ?? 'null') as unknown }
}

/**
 * A registry that stalls: a loopback listener (this test's own) that accepts every connection and
 * never answers a byte, and a registry that fails in the middle of a pull: the real one, missing a
 * blob its manifest lists.
 */
describe('POST /v1/images/pull: a registry that stalls, or fails mid-pull', () => {
  const SHORT_PULL_MS = 3_000
  const BROKEN = 'broken'
  const STALLED = 'stalled'
  /** Bytes a relayed connection carries before it stalls: past the manifest, into the layer. */
  const STALL_AFTER = 256 * 1024
  let silent: Server
  let stalling: Server
  let stallingHost: string
  const held: Socket[] = []
  let silentHost: string
  let quick: TestGateway
  let patient: TestGateway
  const quickErrors: unknown[] = []
  const patientErrors: unknown[] = []
  const patientLog: RequestLogEntry[] = []
  const patientAudit: AuditEntry[] = []
  let brokenRef: string

  beforeAll(async () => {
    silent = createServer((socket) => {
      held.push(socket)
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    silentHost = `127.0.0.1:${(silent.address() as { port: number }).port}`
    // The open registry behind a loopback relay of this test's that stops passing its answers on
    // once a connection has carried STALL_AFTER bytes: the manifest and config pass, the layer
    // stalls part-way (the registry itself is untouched).
    stalling = createServer((client) => {
      const [host, port] = registries.open.split(':')
      const upstream = connect(Number(port), host)
      held.push(client, upstream)
      let passed = 0
      client.on('error', () => {})
      upstream.on('error', () => {})
      client.pipe(upstream)
      upstream.on('data', (chunk: Buffer) => {
        const room = STALL_AFTER - passed
        if (room > 0) client.write(room >= chunk.length ? chunk : chunk.subarray(0, room))
        passed += chunk.length
      })
    })
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve))
    stallingHost = `127.0.0.1:${(stalling.address() as { port: number }).port}`
    await pushUniqueImage({
      registries: [{ host: registries.open, auth: {} }],
      repository: REPOSITORY,
      tag: STALLED,
      bytes: LAYER_BYTES,
    })
    const registriesConfig = {
      [silentHost]: {},
      [stallingHost]: {},
      [registries.auth]: { username: registries.user, password: registries.password },
    }
    quick = await testGateway({
      errors: quickErrors,
      settings: { registries: registriesConfig, pullTimeoutMs: SHORT_PULL_MS },
    })
    patient = await testGateway({
      errors: patientErrors,
      requestLog: patientLog,
      audit: patientAudit,
      settings: { registries: registriesConfig },
    })
    // An image of this run on the registry with basic auth, whose own layer's blob is then
    // deleted: the manifest is served, the layer is not.
    brokenRef = `${registries.auth}/${REPOSITORY}:${BROKEN}`
    await pushUniqueImage({
      registries: [
        {
          host: registries.auth,
          auth: {
            username: registries.user,
            password: registries.password,
            serveraddress: registries.auth,
          },
        },
      ],
      repository: REPOSITORY,
      tag: BROKEN,
      bytes: LAYER_BYTES,
    })
    await deleteLastLayerBlob(registries.auth, REPOSITORY, BROKEN, registries)
  }, 60_000)

  afterAll(async () => {
    for (const socket of held) socket.destroy()
    await new Promise((resolve) => silent?.close(resolve))
    await new Promise((resolve) => stalling?.close(resolve))
    await direct(`/images/${stallingHost}/${REPOSITORY}:${STALLED}`, { method: 'DELETE' })
    await deleteFromRegistry(registries.open, REPOSITORY, STALLED)
    await direct(`/images/${brokenRef}`, { method: 'DELETE' })
    await deleteFromRegistry(registries.auth, REPOSITORY, BROKEN, registries)
  })

  it('answers 504 registry-timeout when the pull outlasts pullTimeoutMs, and keeps nothing', async () => {
    const ref = `${silentHost}/${REPOSITORY}:${TAG}`
    const response = await quick.call('/v1/images/pull', postJson({ ref }))
    const text = await response.text()
    expect(response.status, text).toBe(504)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(JSON.parse(text)).toMatchObject({
      type: 'urn:dockgate:problem:registry-timeout',
      detail: `The registry of ${ref} did not answer in time`,
    })
    expect(text).not.toMatch(/deadline|\/v2\/|http:/)
    // The gateway's own bound answered (the engine's comes later, below), and it was logged.
    expect(quickErrors.map((e) => String((e as Error).message))).toContain(
      'The Docker Engine did not answer in time',
    )
    expect(held.length).toBeGreaterThan(0)
    expect(await engineHas(ref)).toBe(false)
    // As an event stream too: the problem answer comes before any event.
    const streamed = await quick.call('/v1/images/pull', {
      ...postJson({ ref }),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(streamed.status).toBe(504)
    expect(streamed.headers.get('content-type')).toBe('application/problem+json')
    await streamed.body?.cancel()
  }, 30_000)

  it("answers 504 registry-timeout when the engine's own wait for the registry runs out", async () => {
    // dockerd gives a registry that accepts and never answers about 25 s (its TLS attempt, then
    // its /v2/ ping over HTTP), then answers 500 `… context deadline exceeded`.
    const ref = `${silentHost}/${REPOSITORY}:${TAG}`
    const response = await patient.call('/v1/images/pull', postJson({ ref }))
    const text = await response.text()
    expect(response.status, text).toBe(504)
    expect(JSON.parse(text).type).toBe('urn:dockgate:problem:registry-timeout')
    expect(text).not.toMatch(/deadline|\/v2\/|http:/)
    expect(patientErrors.map((e) => String((e as Error).message)).join('\n')).toMatch(
      /deadline exceeded|timeout/i,
    )
  }, 60_000)

  it('ends an event stream whose registry stalls mid-layer with a 504 problem event once pullTimeoutMs passes', async () => {
    const ref = `${stallingHost}/${REPOSITORY}:${STALLED}`
    const { problem } = await failedPullStream(quick, ref, 15_000)
    expect(problem).toMatchObject({
      type: 'urn:dockgate:problem:registry-timeout',
      status: 504,
      detail: `The registry of ${ref} did not answer in time`,
    })
    // The gateway hung up on the engine, which stops the pull: no image is left.
    await new Promise((r) => setTimeout(r, 1_000))
    expect(await engineHas(ref)).toBe(false)
  }, 60_000)

  it('ends an event stream whose registry fails mid-pull with one problem event, no end, and no image', async () => {
    // The manifest was served: the pull streams, and fails on the layer.
    const { events, problem } = await failedPullStream(patient, brokenRef, 30_000)
    expect(problem).toMatchObject({
      type: 'urn:dockgate:problem:registry-error',
      status: 502,
      detail: `The registry of ${brokenRef} failed during the pull`,
    })
    // No registry internals: no blob digest, URL or the registry's words.
    const everything = events.map((e) => e.data).join('\n')
    expect(everything).not.toMatch(/blob|sha256:|\/v2\/|http:|unknown/i)
    // Nothing of it is left that an answer would call an image.
    expect(await engineHas(brokenRef)).toBe(false)
    const images = (await direct('/images/json')).json() as { RepoTags: string[] | null }[]
    expect(images.flatMap((i) => i.RepoTags ?? [])).not.toContain(brokenRef)
  }, 60_000)

  it('holds one of its client’s stream slots while a pull streams its events, and gives it back', async () => {
    const capped = await testGateway({
      settings: { registries: { [stallingHost]: {} }, maxStreamsPerPrincipal: 1 },
    })
    const ref = `${stallingHost}/${REPOSITORY}:${STALLED}`
    const pulling = await capped.call('/v1/images/pull', {
      ...postJson({ ref }),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(pulling.status).toBe(200)
    const reader = readSse(pulling)
    expect((await reader.next(30_000))?.event).toBe('progress')
    // The pull, stalled mid-layer, holds the one slot: another stream is refused.
    const second = await capped.call('/v1/images/pull', {
      ...postJson({ ref }),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(second.status).toBe(429)
    await second.body?.cancel()
    const events = await capped.call('/v1/events')
    expect(events.status).toBe(429)
    await events.body?.cancel()
    await reader.close()
    // The client left: its slot comes back.
    const deadline = Date.now() + 5_000
    let after = await capped.call('/v1/events')
    while (after.status === 429 && Date.now() < deadline) {
      await after.body?.cancel()
      await new Promise((r) => setTimeout(r, 50))
      after = await capped.call('/v1/events')
    }
    expect(after.status).toBe(200)
    await after.body?.cancel()
  }, 60_000)

  it('shows the password of neither registry anywhere', () => {
    const everything = JSON.stringify({
      patientAudit,
      patientLog,
      errors: [...quickErrors, ...patientErrors].map(
        (e) => `${String(e)} ${String((e as Error).cause ?? '')}`,
      ),
    })
    expect(everything).not.toContain(registries.password)
  })
})
