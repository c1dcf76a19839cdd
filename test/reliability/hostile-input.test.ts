/**
 * Hostile input, route by route: every answer is a 4xx problem, and nothing on the engine
 * changes. The proof is the engine's own: its container list (by a probe label every body sent
 * here carries) and its event log over each batch (no create, start, kill, die, stop, destroy…
 * of anything these requests name), besides the engine calls the gateway made for each request.
 */
import { rmSync } from 'node:fs'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { CONTAINER_REF } from '../../src/routes/common.ts'
import { CreateContainerBody, ImageRef } from '../../src/routes/containers.schemas.ts'
import { direct, engineContainerIds, engineInspect, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import {
  type EngineCall,
  type EngineEventRecord,
  engineEvents,
  engineNow,
  MUTATING_ACTIONS,
  rawHttp,
  recordingTransport,
  type ServedApp,
  type SpawnedGateway,
  scratchDir,
  serveApp,
  spawnGateway,
  tagged,
} from '../support/reliability.ts'

const PROBE_KEY = 'dockgate-probe'
const PROBE = `hostile-${process.pid}-${Date.now().toString(36)}`
const IMAGE = testEngineEnv().image
/** Every label set sent here: a container created by mistake is found, and removed by the run. */
const LABELS = { [TEST_LABEL]: TEST_RUN, [PROBE_KEY]: PROBE }
/** A client that owns nothing: ids it sends can never reach another test's container. */
const FUZZER = `fuzzer-${process.pid}`
const NO_LIMITS = {
  rateLimitPerSecond: 1e6,
  rateLimitBurst: 1e6,
  maxStreamsPerPrincipal: 1e6,
  engineCallsPerPrincipal: 1e6,
}

const recorder = recordingTransport()
let gw: TestGateway
let victim: { id: string; name: string; startedAt: string }
let requests = 0

beforeAll(async () => {
  gw = await testGateway({
    transport: recorder.transport,
    settings: NO_LIMITS,
    clients: {
      [FUZZER]: { scopes: ['containers:read', 'containers:write', 'logs:read', 'events:read'] },
    },
  })
  // The container every hostile reference points at: running, so a stop or kill would show.
  const name = uniqueName('victim')
  const created = await direct(`/containers/create?name=${name}`, {
    method: 'POST',
    body: {
      Image: IMAGE,
      Cmd: ['sleep', '600'],
      Labels: LABELS,
      HostConfig: { NetworkMode: 'none' },
    },
  })
  expect(created.status, created.text).toBe(201)
  const id = (created.json() as { Id: string }).Id
  expect((await direct(`/containers/${id}/start`, { method: 'POST' })).status).toBe(204)
  victim = { id, name, startedAt: (await engineInspect(id))!.State.StartedAt }
})

afterAll(async () => {
  for (const id of await engineContainerIds(`${PROBE_KEY}=${PROBE}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
})

interface Sent {
  status: number
  body: any
  contentType: string | null
  /** The engine calls made for this request. */
  calls: EngineCall[]
}

/** One request to the in-process gateway; the engine calls made for it are returned with it. */
async function send(
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: BodyInit; role?: string | null } = {},
): Promise<Sent> {
  const tag = `r${requests++}`
  const response = await tagged(tag, () =>
    gw.call(path, {
      method,
      headers: init.headers,
      body: init.body,
      role: init.role === undefined ? 'admin' : init.role,
      ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit & { role?: string | null }),
  )
  const text = await response.text()
  let body: any
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = text
  }
  return {
    status: response.status,
    body,
    contentType: response.headers.get('content-type'),
    calls: recorder.calls.filter((c) => c.tag === tag),
  }
}

/** A 4xx problem, whose body says the same status. */
function expectProblem(answer: Sent, what: string, status?: number) {
  const context = `${what} → ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`
  expect(answer.status, context).toBeGreaterThanOrEqual(400)
  expect(answer.status, context).toBeLessThan(500)
  if (status !== undefined) expect(answer.status, context).toBe(status)
  expect(answer.contentType, context).toBe('application/problem+json')
  expect(answer.body.status, context).toBe(answer.status)
  expect(answer.body.type, context).toMatch(/^urn:dockgate:problem:[a-z-]+$/)
}

/** The gateway only read from the engine for this request (and with `none`, not even that). */
function expectNoChange(answer: Sent, what: string, none = false) {
  const calls = answer.calls.map((c) => `${c.method} ${c.path}`)
  if (none) expect(calls, `${what}: engine calls`).toEqual([])
  for (const call of answer.calls) expect(call.method, `${what}: ${calls.join(', ')}`).toBe('GET')
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Events of the batch window that are about what these tests send or attack. */
function ours(event: EngineEventRecord): boolean {
  const attributes = event.Actor.Attributes ?? {}
  return (
    event.Actor.ID === victim.id ||
    attributes[PROBE_KEY] === PROBE ||
    (attributes.name ?? '').includes(victim.name) ||
    (attributes.name ?? '').includes(`dgt-fz-${process.pid}`) ||
    (event.Type === 'image' && `${event.Actor.ID} ${attributes.name ?? ''}`.includes('dockgate'))
  )
}

/**
 * Runs a batch and proves, through the engine alone, that it changed nothing: no container
 * with the probe label appeared or went, the victim still runs the same run, and the engine's
 * event log over the batch holds no changing event about anything the batch named.
 */
async function provenHarmless(batch: () => Promise<void>) {
  const before = await engineContainerIds(`${PROBE_KEY}=${PROBE}`)
  const since = engineNow()
  await batch()
  await sleep(100)
  const until = engineNow()
  const changes = (await engineEvents(since, until))
    .filter(ours)
    .filter((e) => MUTATING_ACTIONS.has(e.Action.split(':')[0]!))
    .map((e) => `${e.Type} ${e.Action} ${e.Actor.ID.slice(0, 12)} ${e.Actor.Attributes?.name}`)
  expect(changes).toEqual([])
  expect(await engineContainerIds(`${PROBE_KEY}=${PROBE}`)).toEqual(before)
  const after = await engineInspect(victim.id)
  expect(after?.State.Running).toBe(true)
  expect(after?.State.StartedAt).toBe(victim.startedAt)
}

/** Whether a container reference would pass the gateway's own check (after URL decoding). */
const validRef = (ref: string) => CONTAINER_REF.test(ref)

/** Percent-decoded, or undefined when that is impossible (`%ZZ`). */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/**
 * Whether a path reaches the gateway as written: `.` and `..` segments (also `%2e`) are
 * resolved by the URL parser first, as for any client, so `/v1/containers/./logs` is a request
 * for the container named `logs`.
 */
const intact = (path: string) => new URL(`http://gateway${path}`).pathname === path.split('?')[0]

const CONTAINER_ROUTES: [string, string][] = [
  ['GET', ''],
  ['GET', '/logs'],
  ['GET', '/logs/stream'],
  ['GET', '/stats'],
  ['GET', '/stats/stream'],
  ['POST', '/start'],
  ['POST', '/stop?timeout=0'],
  ['POST', '/restart?timeout=0'],
  ['POST', '/kill?signal=SIGKILL'],
  ['POST', '/wait'],
  ['DELETE', '?force=true'],
]

describe('hostile container and image references', () => {
  /** As sent on the wire (already percent-encoded); each names the victim or the engine's API. */
  const refs = () => {
    const v = victim.name
    return [
      '..%2F..%2Fversion',
      '..%2f..%2f_ping',
      `..%2F..%2Fcontainers%2F${v}`,
      `${v}%2F..%2F${v}`,
      `${v}%2Fstop`,
      `${v}%2F`,
      `%2F${v}`,
      `%2e%2e%2f${v}`,
      `${v}%252F..%252Fversion`,
      `${v}%5C..%5Cversion`,
      `${v}%00`,
      `%00${v}`,
      `${v}%0d%0aX-Injected:%201`,
      `${v}%0A`,
      `-${v}`,
      '--force',
      `.${v}`,
      `_${v}`,
      `${v}%20`,
      `%20${v}`,
      `${v}%3Fforce%3D1`,
      `${v}%23frag`,
      `${v}%3Bsh`,
      `${v}*`,
      `~${v}`,
      `${v}${'x'.repeat(200)}`,
      'a'.repeat(129),
      `%C3%A9${v}`,
      `${v}%E2%80%AE`,
      '%F0%9F%92%A5',
      `${v}%ZZ`,
      '%',
      '..',
      '%2e%2e',
      '.%2e',
    ]
  }

  it('answers every container route with a 4xx problem and never changes the engine', async () => {
    await provenHarmless(async () => {
      for (const ref of refs()) {
        for (const [method, suffix] of CONTAINER_ROUTES) {
          const [pathSuffix, query = ''] = suffix.split('?')
          const path = `/v1/containers/${ref}${pathSuffix}${query ? `?${query}` : ''}`
          const answer = await send(method, path)
          expectProblem(answer, `${method} ${path}`)
          const id = decoded(ref)
          // Invalid references never reach the engine; the rest could only be read there.
          expectNoChange(answer, `${method} ${path}`, id === undefined || !validRef(id))
        }
      }
    })
  })

  it('answers image references with path tricks with a 4xx problem, without asking the engine', async () => {
    const image = encodeURIComponent(IMAGE)
    const refs = [
      '..%2F..%2Fversion',
      `${image}%2F..%2F..%2Fversion`,
      `${image}%2F..%2F..%2Fcontainers%2F${victim.name}%2Fkill`,
      `${image}%00`,
      `${image}%0d%0aX:1`,
      `${image}%3Fx%3D1`,
      '%2e%2e',
      // A valid reference (repository `sha256`, tag `ggg…`): the engine is asked, and says 404.
      `sha256:${'g'.repeat(64)}`,
      'busybox@sha256:abc',
      'A'.repeat(300),
      `${'a'.repeat(256)}`,
      'sha256:abc',
      '%2Fbusybox',
      '-busybox',
      'busybox%3A',
      'busybox%3A%3Alatest',
      '%C3%A9',
    ]
    await provenHarmless(async () => {
      for (const ref of refs) {
        for (const method of ['GET', 'POST', 'DELETE']) {
          const path = `/v1/images/${ref}`
          const answer = await send(method, path)
          expectProblem(answer, `${method} ${path}`)
          const image = decoded(ref)
          const valid = intact(path) && image !== undefined && ImageRef.safeParse(image).success
          expectNoChange(answer, `${method} ${path}`, !valid)
        }
      }
    })
  })

  it('refuses arbitrary ids (fuzzed) with a 4xx problem and asks the engine nothing for invalid ones', async () => {
    const id = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 140 }),
      fc.string({ unit: 'binary-ascii', maxLength: 140 }),
      fc.stringMatching(/^[a-zA-Z0-9_.-]{1,140}$/),
      fc.constantFrom('..', '.', '%', '/', '\\', '\u0000', '-', 'a/../b', '%2e%2e'),
    )
    const route = fc.constantFrom(
      ['GET', ''],
      ['GET', '/logs'],
      ['POST', '/stop'],
      ['POST', '/kill'],
      ['DELETE', '?force=true'],
    )
    await provenHarmless(async () => {
      await fc.assert(
        fc.asyncProperty(id, route, async (ref, [method, suffix]) => {
          const path = `/v1/containers/${encodeURIComponent(ref)}${suffix}`
          const answer = await send(method!, path, { role: FUZZER })
          // A valid id that names nothing this client owns is a 404 like any missing one.
          expectProblem(answer, `${method} ${JSON.stringify(ref)}`)
          expectNoChange(answer, `${method} ${JSON.stringify(ref)}`, intact(path) && !validRef(ref))
        }),
        { numRuns: 200 },
      )
    })
  })
})

describe('an id prefix several containers share', () => {
  it('answers 404 exactly like a missing container, not the engine’s 500', async () => {
    // API 1.41 answers 500 "Multiple IDs found with provided prefix". Make containers until two of
    // them share their first digit (with 17 one always does): the prefix stays shared meanwhile.
    const made: string[] = []
    let shared: string | undefined
    while (shared === undefined && made.length <= 17) {
      const created = await direct('/containers/create', {
        method: 'POST',
        body: { Image: IMAGE, Cmd: ['true'], Labels: LABELS, HostConfig: { NetworkMode: 'none' } },
      })
      expect(created.status).toBe(201)
      const id = (created.json() as { Id: string }).Id
      shared = made.find((other) => other[0] === id[0])?.[0]
      made.push(id)
    }
    onTestFinished(async () => {
      for (const id of made) await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    })
    expect(shared).toBeDefined()
    const missing = await send('GET', '/v1/containers/dockgate-missing-ref', { role: FUZZER })
    expect(missing.status).toBe(404)
    await provenHarmless(async () => {
      // The admin only reads: were the prefix to become unique meanwhile, an action would hit it.
      for (const role of ['admin', FUZZER]) {
        const answer = await send('GET', `/v1/containers/${shared}`, { role })
        expectProblem(answer, `GET ${shared} as ${role}`, 404)
        expect(answer.body.detail).toBe(`No such container: ${shared}`)
      }
      for (const [method, suffix] of CONTAINER_ROUTES) {
        const [pathSuffix, query = ''] = suffix.split('?')
        const path = `/v1/containers/${shared}${pathSuffix}${query ? `?${query}` : ''}`
        const answer = await send(method, path, { role: FUZZER })
        expectProblem(answer, `${method} ${path}`, 404)
        expect(answer.body.detail).toBe(`No such container: ${shared}`)
        expectNoChange(answer, `${method} ${path}`)
      }
    })
  })
})

describe('what is not there, and credentials where they do not belong', () => {
  it('offers none of the engine’s own API, and refuses other methods with 404/405 problems', async () => {
    const c = `/v1/containers/${victim.name}`
    await provenHarmless(async () => {
      for (const [method, path] of [
        ['GET', '/_ping'],
        ['GET', '/version'],
        ['GET', '/v1.41/containers/json'],
        ['POST', '/v1.41/containers/create'],
        ['GET', '/containers/json'],
        ['POST', `/containers/${victim.name}/kill`],
        // `${c}/exec` is the gateway's own now (issue 16): test/routes/exec.test.ts proves its refusals
        ['POST', `${c}/attach`],
        ['GET', `${c}/archive?path=/`],
        ['PUT', `${c}/archive?path=/`],
        ['GET', `${c}/export`],
        ['POST', `${c}/pause`],
        ['POST', `${c}/update`],
        ['POST', `${c}/rename?name=x`],
        ['POST', '/v1/images/create?fromImage=busybox'],
        ['POST', '/v1/build'],
        ['DELETE', '/v1/images'],
        ['POST', '/v1/volumes/create'],
        ['GET', '/v1/networks'],
        ['PUT', '/v1/containers'],
        ['PATCH', c],
        ['PUT', c],
        ['POST', c],
        ['DELETE', '/v1/containers'],
        ['POST', '/v1/images'],
        ['DELETE', '/v1/events'],
        ['POST', '/v1/system/version'],
      ] as const) {
        const answer = await send(method, path)
        expectProblem(answer, `${method} ${path}`)
        expect([404, 405], `${method} ${path}`).toContain(answer.status)
        expectNoChange(answer, `${method} ${path}`, true)
      }
    })
  })

  it('refuses missing, malformed and misplaced credentials with 401 before any engine call', async () => {
    const c = `/v1/containers/${victim.name}`
    const token = tokenOf('admin')
    await provenHarmless(async () => {
      for (const [method, path, headers] of [
        ['POST', `${c}/kill`, {}],
        ['DELETE', `${c}?force=true`, { authorization: 'Bearer' }],
        ['DELETE', `${c}?force=true`, { authorization: `Basic ${btoa(`admin:${token}`)}` }],
        ['POST', `${c}/stop`, { authorization: `Bearer ${token}x` }],
        ['POST', `${c}/stop`, { authorization: `Bearer ${token} ${token}` }],
        ['POST', `${c}/stop`, { authorization: `Bearer ${'a'.repeat(8000)}` }],
        ['POST', `${c}/stop`, { authorization: 'Bearer dgt_%00' }],
        ['POST', `${c}/kill?access_token=${token}`, {}],
        ['POST', `${c}/kill?token=${token}`, {}],
        // Tickets are for event streams only, and only ones the gateway issued.
        ['POST', `${c}/kill?ticket=${token}`, {}],
        ['GET', `/v1/events?ticket=${token}`, {}],
        ['GET', `${c}/logs/stream?ticket=dgk_forged`, {}],
      ] as const) {
        const answer = await send(method, path, { headers, role: null })
        expectProblem(answer, `${method} ${path}`, 401)
        expectNoChange(answer, `${method} ${path}`, true)
      }
      // A token without the scope: 403, still before anything else.
      for (const [method, path] of [
        ['POST', `${c}/kill`],
        ['DELETE', `${c}?force=true`],
        ['POST', '/v1/containers'],
      ] as const) {
        const answer = await send(method, path, {
          role: 'reader',
          headers: { 'content-type': 'application/json' },
          ...(method === 'POST' && path === '/v1/containers'
            ? { body: JSON.stringify(validBody()) }
            : {}),
        })
        expectProblem(answer, `${method} ${path} as reader`, 403)
        expectNoChange(answer, `${method} ${path}`, true)
      }
    })
  })

  it('refuses bad stream-ticket requests with 400/403/415 problems', async () => {
    await provenHarmless(async () => {
      for (const [type, body, status] of [
        ['text/plain', '{"scopes":["events:read"]}', 415],
        [undefined, '{}', 415],
        ['application/json', '{"scopes":"admin"}', 400],
        ['application/json', '{"scopes":["root"]}', 400],
        ['application/json', '{"scopes":[]}', 400],
        ['application/json', '{"scopes":["events:read"],"ttl":86400}', 400],
        ['application/json', '{', 400],
      ] as const) {
        const answer = await send('POST', '/v1/stream-tickets', {
          headers: type ? { 'content-type': type } : {},
          body,
        })
        expectProblem(answer, `${type} ${body}`, status)
        expectNoChange(answer, `${type} ${body}`, true)
      }
      const wider = await send('POST', '/v1/stream-tickets', {
        role: 'reader',
        headers: { 'content-type': 'application/json' },
        body: '{"scopes":["containers:write"]}',
      })
      expectProblem(wider, 'a ticket wider than its caller', 403)
    })
  })
})

describe('query values the engine would answer 500 (or worse) to', () => {
  const cases = () => {
    const c = `/v1/containers/${victim.name}`
    return [
      ['GET', '/v1/containers?label=%3D'],
      ['GET', '/v1/containers?label=a%3Db%0d%0aX:1'],
      ['GET', '/v1/containers?label=a%00'],
      ['GET', `/v1/containers?label=${'k'.repeat(600)}`],
      ['GET', `/v1/containers?${Array.from({ length: 33 }, (_, i) => `label=k${i}`).join('&')}`],
      ['GET', '/v1/containers?status='],
      ['GET', '/v1/containers?status=running%00'],
      ['GET', '/v1/containers?status=Running'],
      ['GET', '/v1/containers?limit=-1'],
      ['GET', '/v1/containers?limit=0'],
      ['GET', '/v1/containers?limit=1001'],
      ['GET', '/v1/containers?limit=1.5'],
      ['GET', '/v1/containers?limit=abc'],
      ['GET', '/v1/containers?limit='],
      ['GET', '/v1/containers?limit=Infinity'],
      ['GET', '/v1/containers?limit=NaN'],
      ['GET', '/v1/containers?all=yes'],
      ['GET', '/v1/containers?name=..%2F'],
      ['GET', '/v1/containers?name=a%0d%0a'],
      ['GET', `/v1/containers?name=${'n'.repeat(129)}`],
      ['GET', '/v1/containers?name=(a%2B)%2B%24'],
      ['GET', `${c}/logs?since=abc`],
      ['GET', `${c}/logs?since=-1`],
      ['GET', `${c}/logs?since=1e9`],
      ['GET', `${c}/logs?since=2026-02-30T00:00:00Z`],
      ['GET', `${c}/logs?since=2026-01-01T25:00:00Z`],
      ['GET', `${c}/logs?since=2026-01-01T00:00:00%2B99:99`],
      ['GET', `${c}/logs?since=1969-12-31T23:59:59Z`],
      ['GET', `${c}/logs?since=${'1'.repeat(41)}`],
      ['GET', `${c}/logs?since=9999999h`],
      ['GET', `${c}/logs?until=10x`],
      ['GET', `${c}/logs?since=200&until=100`],
      ['GET', `${c}/logs?tail=-1`],
      ['GET', `${c}/logs?tail=1e3`],
      ['GET', `${c}/logs?tail=all%00`],
      ['GET', `${c}/logs?tail=99999999`],
      ['GET', `${c}/logs?stdout=false&stderr=false`],
      ['GET', `${c}/logs?stdout=maybe`],
      ['GET', `${c}/logs/stream?cursor=bogus`],
      ['GET', `${c}/logs/stream?tail=-1`],
      ['GET', `${c}/logs/stream?since=yesterday`],
      ['GET', `${c}/logs/stream?cursor=${'c'.repeat(81)}`],
      ['GET', '/v1/events?type=bogus'],
      ['GET', '/v1/events?since=abc'],
      ['GET', '/v1/events?action=START'],
      ['GET', '/v1/events?action=exec_start%3A%20sh'],
      ['GET', '/v1/events?container=..%2F'],
      ['GET', '/v1/events?image=UPPER'],
      ['GET', '/v1/events?label=%3D'],
      ['GET', `/v1/events?ticket=${'t'.repeat(2049)}`],
      ['POST', `${c}/stop?timeout=-1`],
      ['POST', `${c}/stop?timeout=3601`],
      ['POST', `${c}/stop?timeout=1.5`],
      ['POST', `${c}/stop?timeout=abc`],
      ['POST', `${c}/restart?timeout=-5`],
      ['POST', `${c}/kill?signal=SIGKILL%0d%0a`],
      ['POST', `${c}/kill?signal=-9`],
      ['POST', `${c}/kill?signal=999`],
      ['POST', `${c}/kill?signal=sigkill`],
      ['POST', `${c}/kill?signal=SIG%00KILL`],
      ['DELETE', `${c}?force=yes`],
      ['GET', '/v1/images?dangling=maybe'],
      ['POST', '/v1/containers?start=yes'],
    ] as const
  }

  it('refuses each with a 400 validation problem before any engine call', async () => {
    await provenHarmless(async () => {
      for (const [method, path] of cases()) {
        const answer = await send(method, path, {
          // The create case needs a body that would otherwise be valid.
          ...(method === 'POST' && path.startsWith('/v1/containers?')
            ? {
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ image: IMAGE, labels: LABELS }),
              }
            : {}),
        })
        expectProblem(answer, `${method} ${path}`, 400)
        expect(answer.body.type).toBe('urn:dockgate:problem:validation-failed')
        expectNoChange(answer, `${method} ${path}`, true)
      }
      for (const lastEventId of ['abc', '1'.repeat(21), '-1', '1 2']) {
        const answer = await send('GET', '/v1/events', {
          headers: { 'last-event-id': lastEventId },
        })
        expectProblem(answer, `Last-Event-ID ${lastEventId}`, 400)
        expectNoChange(answer, `Last-Event-ID ${lastEventId}`, true)
      }
    })
  })

  it('passes the engine only canonical values, whatever the logs and list queries (fuzzed)', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 45 }),
      fc.stringMatching(/^\d{1,13}(\.\d{1,10})?$/),
      fc.stringMatching(/^\d{1,3}h?\d{0,3}m?\d{0,3}s?$/),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('all', '0', '-0', '1e2', '0x10', ' 5', '5 ', '+5', '00', ''),
    )
    await provenHarmless(async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('since', 'until', 'tail'),
          value,
          value,
          async (key, v, limit) => {
            const logs = await send(
              'GET',
              `/v1/containers/${victim.name}/logs?${new URLSearchParams({ [key]: v })}`,
            )
            expect([200, 400], `${key}=${JSON.stringify(v)}`).toContain(logs.status)
            if (logs.status !== 200) expectProblem(logs, `${key}=${v}`, 400)
            expectNoChange(logs, `${key}=${v}`, logs.status === 400)
            for (const call of logs.calls.filter((c) => c.path.includes('/logs'))) {
              const query = new URL(`http://docker${call.path}`).searchParams
              for (const time of ['since', 'until']) {
                const sent = query.get(time)
                if (sent !== null) expect(sent).toMatch(/^\d{1,12}\.\d{9}$/)
              }
              const tail = query.get('tail')
              if (tail !== null) expect(tail).toMatch(/^(all|\d{1,7})$/)
            }
            const list = await send('GET', `/v1/containers?${new URLSearchParams({ limit })}`)
            expect([200, 400], `limit=${JSON.stringify(limit)}`).toContain(list.status)
            expectNoChange(list, `limit=${limit}`, list.status === 400)
            // Whatever spelling the gateway accepts (`1e2`, `0x10`…), the engine gets a plain integer.
            for (const call of list.calls.filter((c) => c.path.includes('/containers/json'))) {
              const sent = new URL(`http://docker${call.path}`).searchParams.get('limit')
              if (sent !== null) {
                expect(sent).toMatch(/^[1-9]\d{0,3}$/)
                expect(Number(sent)).toBeLessThanOrEqual(1000)
              }
            }
          },
        ),
        { numRuns: 150 },
      )
    })
  })
})

/** A body that the gateway would accept: if a test's trick let it through, a container appears. */
const validBody = (extra: Record<string, unknown> = {}) => ({
  image: IMAGE,
  name: uniqueName('hostile'),
  cmd: ['true'],
  labels: LABELS,
  ...extra,
})

describe('hostile bodies', () => {
  it('refuses bodies over the limit with 413 before reading them, declared or chunked', async () => {
    const small = await testGateway({ settings: { ...NO_LIMITS, bodyLimitBytes: 512 } })
    const padded = (bytes: number) => {
      const body = JSON.stringify(validBody({ image: 'NOT A VALID REF' }))
      return body.replace('"cmd"', `${' '.repeat(bytes - body.length)}"cmd"`)
    }
    const json = { 'content-type': 'application/json' }
    await provenHarmless(async () => {
      // At the limit: read and validated (the image is invalid on purpose); one byte over: 413.
      const atLimit = await small.call('/v1/containers', {
        method: 'POST',
        headers: json,
        body: padded(512),
      })
      expect(atLimit.status).toBe(400)
      const over = await small.call('/v1/containers', {
        method: 'POST',
        headers: json,
        body: padded(513),
      })
      expect(over.status).toBe(413)
      expect(over.headers.get('content-type')).toBe('application/problem+json')
      expect((await over.json()).type).toBe('urn:dockgate:problem:payload-too-large')

      // The default limit, 64 KiB, on every kind of route, also without a Content-Length.
      const big = JSON.stringify(validBody({ env: { PAD: 'x'.repeat(64 * 1024) } }))
      for (const [method, path] of [
        ['POST', '/v1/containers'],
        ['POST', `/v1/containers/${victim.name}/stop`],
        ['POST', `/v1/containers/${victim.name}/kill`],
        ['DELETE', `/v1/containers/${victim.name}?force=true`],
        ['POST', '/v1/stream-tickets'],
      ] as const) {
        const declared = await send(method, path, { headers: json, body: big })
        expectProblem(declared, `${method} ${path} (64 KiB + body)`, 413)
        expectNoChange(declared, `${method} ${path}`, true)
        const bytes = new TextEncoder().encode(big)
        const chunked = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 8192)
              controller.enqueue(bytes.slice(i, i + 8192))
            controller.close()
          },
        })
        const streamed = await send(method, path, { headers: json, body: chunked })
        expectProblem(streamed, `${method} ${path} (chunked)`, 413)
        expectNoChange(streamed, `${method} ${path} (chunked)`, true)
      }
    })
  })

  it('refuses every body that is not JSON with 415, and takes JSON media types', async () => {
    const body = JSON.stringify(validBody())
    const refused: [string | undefined, string][] = [
      ['text/plain', body],
      ['text/json', body],
      ['application/jsonx', body],
      ['application/x-www-form-urlencoded', `image=${IMAGE}&${TEST_LABEL}=${TEST_RUN}`],
      [
        'multipart/form-data; boundary=x',
        `--x\r\nContent-Disposition: form-data; name="json"\r\n\r\n${body}\r\n--x--\r\n`,
      ],
      ['application/octet-stream', body],
      [undefined, body],
      ['', body],
    ]
    await provenHarmless(async () => {
      for (const [type, payload] of refused) {
        const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type }
        const answer = await send('POST', '/v1/containers', { headers, body: payload })
        expectProblem(answer, `content-type ${type}`, 415)
        expect(answer.body.type).toBe('urn:dockgate:problem:unsupported-media-type')
        expectNoChange(answer, `content-type ${type}`, true)
      }
      // Hono takes any JSON media type (`+json` suffixes, any case, any parameter): they reach
      // validation (the image here is invalid on purpose), so none of them is a way around it.
      for (const type of [
        'APPLICATION/JSON',
        'application/vnd.api+json',
        'application/json; charset=utf-8',
      ]) {
        const answer = await send('POST', '/v1/containers', {
          headers: { 'content-type': type },
          body: JSON.stringify(validBody({ image: 'NOT A VALID REF' })),
        })
        expectProblem(answer, `content-type ${type}`, 400)
        expect(answer.body.type).toBe('urn:dockgate:problem:validation-failed')
        expectNoChange(answer, `content-type ${type}`, true)
      }
    })
  })

  it('decodes a JSON body as UTF-8 whatever charset it declares', async () => {
    // RFC 8259: JSON is UTF-8; the charset parameter is ignored, not a 415.
    const name = uniqueName('latin1')
    const answer = await send('POST', '/v1/containers', {
      headers: { 'content-type': 'application/json; charset=latin1' },
      body: JSON.stringify(validBody({ name, labels: { ...LABELS, note: 'été' } })),
    })
    expect(answer.status, JSON.stringify(answer.body)).toBe(201)
    const inspect = await engineInspect(name)
    expect(inspect?.Config.Labels.note).toBe('été')
    await direct(`/containers/${inspect!.Id}?force=1`, { method: 'DELETE' })
  })

  it('reads duplicate keys as JSON.parse does (the last wins) and sends the engine only its own body', async () => {
    // The gateway validates the parsed object and builds the engine's body from it: whatever a
    // duplicate key meant to another parser, the engine sees exactly what was validated.
    const raw = (json: string) =>
      send('POST', '/v1/containers', {
        headers: { 'content-type': 'application/json' },
        body: json,
      })
    const rest = (name: string) =>
      `"name":"${name}","cmd":["true"],"labels":${JSON.stringify(LABELS)}`

    await provenHarmless(async () => {
      const lastInvalid = await raw(
        `{"image":"${IMAGE}","image":"NOT VALID",${rest(uniqueName('dup'))}}`,
      )
      expectProblem(lastInvalid, 'duplicate image, last invalid', 400)
      expectNoChange(lastInvalid, 'duplicate image', true)
      const reservedLast = await raw(
        `{"image":"${IMAGE}",${rest(uniqueName('dup'))},"labels":${JSON.stringify({ 'dockgate.owner': 'someone-else', ...LABELS })}}`,
      )
      expectProblem(reservedLast, 'duplicate labels, the last reserved', 400)
      expectNoChange(reservedLast, 'duplicate labels', true)
    })

    const name = uniqueName('dup')
    const firstInvalid = await raw(
      `{"image":"NOT VALID","image":"${IMAGE}","labels":{"dockgate.owner":"someone-else"},${rest(name)}}`,
    )
    expect(firstInvalid.status, JSON.stringify(firstInvalid.body)).toBe(201)
    const inspect = await engineInspect(name)
    expect(inspect?.Config.Image).toBe(IMAGE)
    // The owner is the caller, never what an earlier duplicate said.
    expect(inspect?.Config.Labels['dockgate.owner']).toBe('admin')
    const create = firstInvalid.calls.find((c) => c.method === 'POST')
    expect(create?.path).toMatch(/\/containers\/create\?name=/)
    await direct(`/containers/${inspect!.Id}?force=1`, { method: 'DELETE' })
  })

  it('refuses unknown, wrongly typed and out-of-range fields with 400 before any engine call', async () => {
    const bodies: Record<string, unknown>[] = [
      { HostConfig: { Privileged: true } },
      { hostConfig: { Binds: ['/:/host'] } },
      { privileged: true },
      { Image: IMAGE },
      { binds: ['/:/host'] },
      { network: 'host' },
      { user: 'root' },
      { resources: { memory: 1 } },
      { resources: { memory: 6 * 1024 * 1024 - 1 } },
      { resources: { memory: 2 ** 40 + 1 } },
      { resources: { memory: '536870912' } },
      { resources: { memory: 536870912.5 } },
      { resources: { memory: -536870912 } },
      { resources: { memory: null } },
      { resources: { pids: 0 } },
      { resources: { pids: -1 } },
      { resources: { pids: 1.5 } },
      { resources: { pids: 1_000_001 } },
      { resources: { cpus: 1e9 } },
      { resources: { cpus: 0 } },
      { resources: { cpus: 0.001 } },
      { resources: { cpus: 'NaN' } },
      { resources: { cpus: 'Infinity' } },
      { resources: { cpus: '1' } },
      { resources: { swap: 0 } },
      { resources: [] },
      { tty: 'true' },
      { tty: 1 },
      { cmd: 'sh -c reboot' },
      { cmd: [1, 2] },
      { cmd: [null] },
      { entrypoint: {} },
      { env: ['A=B'] },
      { env: { A: 1 } },
      { env: { 'A=B': 'c' } },
      { env: { '': 'x' } },
      { env: { 'A\u0000': 'x' } },
      { labels: { '': 'x', ...LABELS } },
      { labels: { '-x': 'y', ...LABELS } },
      { labels: { ...LABELS, 'dockgate.owner': 'me' } },
      { labels: { ...LABELS, 'dockgate.x': 'y' } },
      { labels: { ...LABELS, k: null } },
      { labels: { ...LABELS, k: 1 } },
      { labels: ['a=b'] },
      { name: '' },
      { name: '-rf' },
      { name: 'a/b' },
      { name: '/abs' },
      { name: 'n'.repeat(129) },
      { name: 'x\r\ny' },
      { name: 7 },
      { workingDir: 'relative' },
      { workingDir: '/a\u0000b' },
      { workingDir: `/${'d'.repeat(4096)}` },
      { image: '' },
      { image: 'UPPER' },
      { image: `${IMAGE}\r\nX: 1` },
      { image: '../../etc' },
      { image: 7 },
      { image: null },
    ]
    await provenHarmless(async () => {
      for (const extra of bodies) {
        const body = validBody(extra)
        const answer = await send('POST', '/v1/containers?start=true', {
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
        expectProblem(answer, JSON.stringify(extra).slice(0, 100), 400)
        expectNoChange(answer, JSON.stringify(extra).slice(0, 100), true)
      }
      // Not JSON objects at all.
      for (const text of ['[]', 'null', '"x"', '1', 'true', '', '{', '{"image":', '\u0000', '{}']) {
        const answer = await send('POST', '/v1/containers', {
          headers: { 'content-type': 'application/json' },
          body: text,
        })
        expectProblem(answer, JSON.stringify(text), 400)
        expect(['validation-failed', 'malformed-json']).toContain(
          answer.body.type.replace('urn:dockgate:problem:', ''),
        )
        expectNoChange(answer, JSON.stringify(text), true)
      }
    })
  })

  it('answers arbitrary create bodies (fuzzed) with 400/403/404/409 or 201, and 201 only for valid ones', async () => {
    const junk = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
    )
    const valid = <T>(arbitrary: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary, weight: 12 }, { arbitrary: junk, weight: 1 })
    const word = fc.string({ maxLength: 16 })
    const labelKey = fc.oneof(
      { arbitrary: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,12}$/), weight: 10 },
      { arbitrary: fc.constantFrom('dockgate.owner', 'dockgate.x', '', ' x', 'a=b'), weight: 1 },
      { arbitrary: fc.string({ maxLength: 6 }), weight: 1 },
    )
    const envKey = fc.oneof(
      { arbitrary: fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/), weight: 10 },
      { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
    )
    const body = fc.record(
      {
        image: fc.oneof(
          { arbitrary: fc.constant(IMAGE), weight: 6 },
          { arbitrary: fc.constant('dockgate-missing/never:there'), weight: 2 },
          { arbitrary: fc.stringMatching(/^[a-z0-9]{1,8}(:[a-z0-9]{1,5})?$/), weight: 1 },
          { arbitrary: junk, weight: 1 },
        ),
        name: valid(
          fc
            .stringMatching(/^[a-zA-Z0-9_.-]{0,12}$/)
            .map((s) => `dgt-fz-${process.pid}-${Date.now().toString(36)}${s}`),
        ),
        cmd: valid(fc.array(word, { maxLength: 4 })),
        entrypoint: valid(fc.array(word, { maxLength: 2 })),
        env: valid(fc.dictionary(envKey, word, { maxKeys: 3 })),
        // Always present, and when an object always with the run's labels: whatever is created is found.
        labels: fc.oneof(
          {
            arbitrary: fc
              .dictionary(labelKey, word, { maxKeys: 3 })
              .map((labels) => ({ ...labels, ...LABELS })),
            weight: 4,
          },
          {
            arbitrary: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(word)),
            weight: 1,
          },
        ),
        workingDir: valid(
          fc.oneof(
            { arbitrary: fc.stringMatching(/^\/[a-z/]{0,10}$/), weight: 4 },
            { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
          ),
        ),
        tty: valid(fc.boolean()),
        resources: valid(
          fc.record(
            {
              memory: valid(
                fc.oneof(
                  { arbitrary: fc.integer({ min: 6 * 1024 * 1024, max: 2 ** 31 }), weight: 4 },
                  { arbitrary: fc.integer(), weight: 1 },
                  { arbitrary: fc.double(), weight: 1 },
                ),
              ),
              cpus: valid(
                fc.oneof(
                  { arbitrary: fc.double({ min: 0.01, max: 2, noNaN: true }), weight: 4 },
                  { arbitrary: fc.double(), weight: 1 },
                ),
              ),
              pids: valid(
                fc.oneof(
                  { arbitrary: fc.integer({ min: 1, max: 4096 }), weight: 4 },
                  { arbitrary: fc.integer(), weight: 1 },
                ),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: ['image', 'labels'] },
    )
    const junkKeys = fc.oneof(
      { arbitrary: fc.constant({}), weight: 6 },
      {
        arbitrary: fc.dictionary(
          fc.oneof(
            fc.constantFrom('HostConfig', 'Privileged', 'Binds', 'Image', 'hostConfig', 'Cmd'),
            fc.string({ maxLength: 8 }),
          ),
          fc.jsonValue({ maxDepth: 1 }),
          { minKeys: 1, maxKeys: 2 },
        ),
        weight: 1,
      },
    )
    let created = 0
    let refused = 0
    await provenHarmlessExceptCreates(async () => {
      await fc.assert(
        fc.asyncProperty(body, junkKeys, async (fields, extra) => {
          const text = JSON.stringify({ ...extra, ...fields })
          const passes = CreateContainerBody.safeParse(JSON.parse(text)).success
          const answer = await send('POST', '/v1/containers', {
            headers: { 'content-type': 'application/json' },
            body: text,
          })
          const context = `${text.slice(0, 300)} → ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`
          expect([201, 400, 403, 404, 409], context).toContain(answer.status)
          for (const call of answer.calls) {
            expect(`${call.method} ${call.path}`, context).toMatch(
              /^(GET \/|POST \/v[\d.]+\/containers\/create(\?name=[\w.-]+)?$)/,
            )
          }
          if (!passes) {
            expect(answer.status, context).toBe(400)
            expect(answer.calls, context).toEqual([])
          }
          if (answer.status === 201) {
            created++
            expect(passes, context).toBe(true)
            await direct(`/containers/${answer.body.id}?force=1`, { method: 'DELETE' })
          } else {
            refused++
            expectProblem(answer, context)
          }
        }),
        {
          numRuns: 150,
          // Both sides for sure: one valid body, one with a field nobody may set.
          examples: [
            [{ image: IMAGE, labels: LABELS, cmd: ['true'], resources: { pids: 16 } }, {}],
            [{ image: IMAGE, labels: LABELS }, { HostConfig: { Privileged: true } }],
          ],
        },
      )
    })
    // The generator reaches both sides.
    expect(created).toBeGreaterThan(0)
    expect(refused).toBeGreaterThan(0)
  })
})

/** As `provenHarmless`, for a batch that may create (and then removes) probe-labelled containers. */
async function provenHarmlessExceptCreates(batch: () => Promise<void>) {
  const before = await engineContainerIds(`${PROBE_KEY}=${PROBE}`)
  const since = engineNow()
  await batch()
  await sleep(100)
  const until = engineNow()
  const changes = (await engineEvents(since, until))
    .filter(ours)
    .filter((e) => MUTATING_ACTIONS.has(e.Action.split(':')[0]!))
  // Only creations and their removal: nothing was started, stopped or killed.
  const actions = new Set(changes.map((e) => e.Action))
  for (const action of actions) expect(['create', 'destroy']).toContain(action)
  expect(changes.filter((e) => e.Actor.ID === victim.id)).toEqual([])
  expect(await engineContainerIds(`${PROBE_KEY}=${PROBE}`)).toEqual(before)
  const after = await engineInspect(victim.id)
  expect(after?.State.StartedAt).toBe(victim.startedAt)
}

describe('on the wire: CR/LF, huge headers and slow clients', () => {
  let served: ServedApp
  const auth = `Authorization: Bearer ${tokenOf('admin')}\r\n`

  beforeAll(async () => {
    served = await serveApp(gw.app)
  })
  afterAll(() => served.close())

  const get = (target: string, headers = '') =>
    rawHttp(
      served.port,
      [`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}${headers}Connection: close\r\n\r\n`],
      5_000,
    )

  it('refuses CR/LF smuggled into query values, names and bodies with a 400 problem', async () => {
    await provenHarmless(async () => {
      for (const target of [
        '/v1/containers?label=a%0d%0aInjected:%20b',
        '/v1/containers?label=a=b%0d%0a%0d%0aGET%20/v1/containers/x/kill',
        '/v1/containers?name=x%0d%0a',
        `/v1/containers/${victim.name}%0d%0a`,
        `/v1/containers/${victim.name}/logs?since=1%0d%0a`,
        '/v1/events?label=a%0aX',
        '/v1/images/busybox%0d%0a',
      ]) {
        const answer = await get(target)
        expect(answer.status, `${target}\n${answer.text}`).toBe(400)
        expect(answer.text).toMatch(/content-type: application\/problem\+json/i)
        expect(answer.text).not.toMatch(/^Injected:/im)
      }
      const body = JSON.stringify(validBody({ name: 'x\r\nInjected: 1' }))
      const post = await rawHttp(served.port, [
        `POST /v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      ])
      expect(post.status).toBe(400)
    })
  })

  it('leaves malformed requests to Node’s parser: a plain 400 and a closed connection', async () => {
    await provenHarmless(async () => {
      for (const request of [
        `GET /v1/containers?label=a\rb HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}X-Foo: a\rInjected: b\r\n\r\n`,
        `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}X-Foo: a\u0000b\r\n\r\n`,
        `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
        `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
        `POST /v1/containers/${victim.name}/kill HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n`,
        'GET /v1/containers HTTP/9.9\r\nHost: x\r\n\r\n',
        'NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n',
      ]) {
        const answer = await rawHttp(served.port, [request], 5_000)
        expect(answer.status, JSON.stringify(request)).toBe(400)
        expect(answer.closed).toBe(true)
      }
    })
    expect((await get('/healthz')).status).toBe(200)
  })

  it('never reflects a hostile request id, and normalises path tricks on the wire', async () => {
    const hostile = await get('/healthz', 'X-Request-Id: abc<script>\r\n')
    expect(hostile.status).toBe(200)
    expect(hostile.text).not.toContain('<script>')
    const long = await get('/healthz', `X-Request-Id: ${'a'.repeat(300)}\r\n`)
    expect(long.text).not.toContain('a'.repeat(300))
    const fine = await get('/healthz', 'X-Request-Id: trace-123\r\n')
    expect(fine.text).toMatch(/x-request-id: trace-123/i)

    await provenHarmless(async () => {
      for (const target of [
        '/v1/containers/../../_ping',
        '/v1/containers/../../version',
        '/v1/containers/%2e%2e/%2e%2e/version',
        `/v1/containers/..%2f..%2fcontainers%2f${victim.name}%2fkill`,
        '//v1/containers/x/kill',
        '/v1//containers',
        `/v1/images/..%2f..%2fcontainers%2f${victim.name}%2fjson`,
        `http://evil.example/v1/containers/${victim.name}%2fkill`,
        '*',
      ]) {
        for (const method of ['GET', 'POST', 'DELETE']) {
          const answer = await rawHttp(served.port, [
            `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Length: 0\r\nConnection: close\r\n\r\n`,
          ])
          expect(
            answer.status,
            `${method} ${target}\n${answer.text.slice(0, 400)}`,
          ).toBeGreaterThanOrEqual(400)
          expect(answer.status, `${method} ${target}`).toBeLessThan(500)
        }
      }
    })
  })

  it('answers a Content-Length over the limit with 413 at once, without waiting for the body', async () => {
    const answer = await rawHttp(
      served.port,
      [
        `POST /v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{"image":`,
      ],
      3_000,
    )
    expect(answer.status, answer.text).toBe(413)
    expect(answer.ms).toBeLessThan(3_000)
  })
})

describe('the Node entry point against slow and oversized requests', () => {
  let dir: string | undefined
  let node: SpawnedGateway

  beforeAll(async () => {
    dir = scratchDir('dockgate-hostile')
    node = await spawnGateway({ dir, config: {}, env: { DOCKGATE_TOKEN: tokenOf('admin') } })
  })
  afterAll(() => {
    node?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const healthy = async () => (await fetch(`${node.url}/healthz`)).status

  it('answers a 64 KiB Authorization header (and 20,000 headers) with 431 and keeps serving', async () => {
    for (const headers of [
      `Authorization: Bearer ${'a'.repeat(64 * 1024)}\r\n`,
      Array.from({ length: 20_000 }, (_, i) => `X-H${i}: v\r\n`).join(''),
    ]) {
      const answer = await rawHttp(
        node.port,
        [`GET /v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`],
        5_000,
      )
      expect(answer.status).toBe(431)
      expect(answer.closed).toBe(true)
      expect(await healthy()).toBe(200)
    }
  })

  it('times out a body sent a byte every 500 ms, and headers that never end, within 20 s', async () => {
    const before = await engineContainerIds(`${PROBE_KEY}=${PROBE}`)
    const body = JSON.stringify(validBody()).padEnd(1000, ' ')
    const slowBody = rawHttp(
      node.port,
      [
        `POST /v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokenOf('admin')}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        ...[...body].flatMap((ch) => [{ delayMs: 500 }, ch]),
      ],
      25_000,
    )
    const slowHeaders = rawHttp(
      node.port,
      [
        'GET /healthz HTTP/1.1\r\n',
        ...Array.from({ length: 60 }, (_, i) => [{ delayMs: 500 }, `X-Slow-${i}: 1\r\n`]).flat(),
      ],
      25_000,
    )
    // Meanwhile everyone else is served.
    await new Promise((r) => setTimeout(r, 2_000))
    expect(await healthy()).toBe(200)
    const [bodyAnswer, headersAnswer] = await Promise.all([slowBody, slowHeaders])
    // Node ends both with its own `408 Request Timeout` and closes the connection. For the body,
    // the request is already in the gateway's hands: should the gateway have begun its answer to
    // the broken body when the timeout strikes, Node closes the connection without the 408.
    for (const [what, answer] of [
      ['slow body', bodyAnswer],
      ['slow headers', headersAnswer],
    ] as const) {
      const context = `${what}: ${answer.ms} ms ${JSON.stringify(answer.text.slice(0, 200))}`
      expect(answer.closed, context).toBe(true)
      expect(answer.ms, context).toBeLessThan(20_000)
      expect(answer.ms, context).toBeGreaterThan(9_000)
      expect([408, undefined], context).toContain(answer.status)
    }
    expect(headersAnswer.status).toBe(408)
    expect(await healthy()).toBe(200)
    // Nothing was created from the trickled body.
    expect(await engineContainerIds(`${PROBE_KEY}=${PROBE}`)).toEqual(before)
  }, 40_000)
})
