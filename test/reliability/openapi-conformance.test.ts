/**
 * Requests generated from the committed OpenAPI document, valid and invalid, sent over real HTTP
 * to the Node entry point in front of the real engine; every answer is checked against the
 * document: its status is listed for the operation, its content type is the listed one, its body
 * validates against the listed schema (Ajv, JSON Schema 2020-12). A request the document calls
 * valid is never answered 400 or 5xx; one it calls invalid is answered 400 (415 for a body that
 * is not JSON). Values come from the document's own schemas (fast-check, a fixed count per
 * operation); only what a schema cannot say is chosen here: which containers exist, time values
 * that name real dates, and names that can never touch another test's containers.
 */
import { rmSync } from 'node:fs'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { direct, engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { tokenOf } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import {
  DOCUMENT,
  type JsonSchema,
  lastErrors,
  OPERATIONS,
  type Operation,
  queryValueValidates,
  validates,
} from '../support/openapi.ts'
import { type SpawnedGateway, scratchDir, spawnGateway } from '../support/reliability.ts'

/** Requests per operation: about 400 in all, a few tens of seconds. */
const VALID_RUNS = 12
const INVALID_RUNS = 8
const SEED = Number(process.env.DOCKGATE_FUZZ_SEED ?? Date.now() % 1_000_000)

const RUN = `fz${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`
const PROBE = { key: 'dockgate-probe', value: `conformance-${RUN}` }
const LABELS = { [TEST_LABEL]: TEST_RUN, [PROBE.key]: PROBE.value }
const IMAGE = testEngineEnv().image

/**
 * Answers to schema-valid requests that are refused all the same, for reasons no schema can
 * state (the engine's host, the image's files): each is matched on operation, status and the
 * problem's detail, printed, and not counted. Anything else breaking the rules fails the test.
 */
const KNOWN: { operationId: string; status: number; detail: RegExp; item: string }[] = [
  {
    // Not a defect: within the built-in maximum (4 CPUs, a policy may raise it) the engine still
    // refuses more CPUs than its host has ("Range of CPUs is from 0.01 to 2.00" on two cores,
    // answered in a fixed sentence), and no schema can know the host.
    operationId: 'createContainer',
    status: 400,
    detail: /The Docker Engine refused the container's configuration/,
    item: 'allowed: more CPUs than the engine’s host has',
  },
  {
    // Not a defect: with ?start=true, a command the image does not have is the caller's to fix,
    // and no schema can list an image's executables.
    operationId: 'createContainer',
    status: 400,
    detail: /OCI runtime create failed|its command could not be run/,
    item: 'allowed: a start that failed on the caller’s own command (item 3 words it)',
  },
]

let dir: string | undefined
let node: SpawnedGateway
/** Containers that exist: one that ran and exited, one running (only read, never changed). */
const pool = { exited: '', exitedId: '', running: '', created: [] as string[] }

beforeAll(async () => {
  dir = scratchDir('dockgate-conformance')
  node = await spawnGateway({
    dir,
    config: { limits: { requestsPerSecond: 100_000, burst: 100_000, streamsPerClient: 1_000 } },
    env: { DOCKGATE_TOKEN: tokenOf('admin') },
  })
  const make = async (name: string, cmd: string[]) => {
    const created = await direct(`/containers/create?name=${name}`, {
      method: 'POST',
      body: { Image: IMAGE, Cmd: cmd, Labels: LABELS, HostConfig: { NetworkMode: 'none' } },
    })
    const id = (created.json() as { Id: string }).Id
    await direct(`/containers/${id}/start`, { method: 'POST' })
    return id
  }
  pool.exited = `${RUN}-exited`
  pool.exitedId = await make(pool.exited, ['sh', '-c', 'echo out; echo err >&2'])
  await direct(`/containers/${pool.exitedId}/wait`, { method: 'POST' })
  pool.running = `${RUN}-running`
  await make(pool.running, ['sleep', '600'])
}, 60_000)

afterAll(async () => {
  node?.kill()
  if (dir) rmSync(dir, { recursive: true, force: true })
  for (const id of await engineContainerIds(`${PROBE.key}=${PROBE.value}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
  const filters = encodeURIComponent(JSON.stringify({ label: [`${PROBE.key}=${PROBE.value}`] }))
  const services = await direct(`/services?filters=${filters}`)
  if (services.status === 200) {
    for (const { ID } of services.json() as { ID: string }[]) {
      await direct(`/services/${ID}`, { method: 'DELETE' })
    }
  }
})

// --- arbitraries from the document's schemas ----------------------------------------------------

const resolve = (schema: JsonSchema): JsonSchema =>
  schema.$ref ? resolve(DOCUMENT.components.schemas[schema.$ref.split('/').pop()]!) : schema

/** Values of a schema (kept small); the caller filters them through the schema itself. */
function arbitrary(input: JsonSchema): fc.Arbitrary<unknown> {
  const schema = resolve(input)
  if (schema.enum) return fc.constantFrom(...(schema.enum as unknown[]))
  if (schema.const !== undefined) return fc.constant(schema.const)
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives) return fc.oneof(...(alternatives as JsonSchema[]).map(arbitrary))
  const type = [schema.type].flat()[0]
  switch (type) {
    case 'string': {
      const [min, max] = [schema.minLength ?? 0, schema.maxLength ?? 64]
      const base = schema.pattern
        ? fc.stringMatching(new RegExp(withoutLookarounds(schema.pattern)))
        : fc.string({ minLength: min, maxLength: Math.min(max, 24) })
      return base.filter((s) => s.length >= min && s.length <= max)
    }
    case 'integer': {
      const min = schema.minimum ?? -1000
      return fc.integer({
        min,
        max: Math.min(schema.maximum ?? min + 1e6, Number.MAX_SAFE_INTEGER),
      })
    }
    case 'number': {
      const min = schema.minimum ?? 0
      return fc.double({ min, max: schema.maximum ?? min + 1e6, noNaN: true })
    }
    case 'boolean':
      return fc.boolean()
    case 'array':
      return fc.array(arbitrary(schema.items ?? {}), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 3, 3),
      })
    case 'object': {
      if (schema.properties) {
        const properties = Object.fromEntries(
          Object.entries(schema.properties as Record<string, JsonSchema>).map(([k, v]) => [
            k,
            arbitrary(v),
          ]),
        )
        return fc.record(properties, { requiredKeys: schema.required ?? [] })
      }
      const keys = schema.propertyNames
        ? arbitrary({ type: 'string', ...schema.propertyNames })
        : fc.string()
      return fc.dictionary(
        keys as fc.Arbitrary<string>,
        arbitrary(schema.additionalProperties ?? {}),
        {
          maxKeys: 3,
        },
      )
    }
    default:
      return fc.jsonValue({ maxDepth: 1 })
  }
}

/**
 * fast-check cannot generate from a lookahead (`(?!…)`, `(?=…)`); without it the pattern
 * matches more, and `ofSchema` keeps only the values the whole schema allows.
 */
const withoutLookarounds = (pattern: string) =>
  pattern.replace(/\(\?[=!](?:[^()]|\([^()]*\))*\)/g, '')

const ofSchema = (schema: JsonSchema) => arbitrary(schema).filter((v) => validates(schema, v))

// --- requests -----------------------------------------------------------------------------------

interface Spec {
  op: Operation
  valid: boolean
  /** What was changed to make it invalid, for the failure message. */
  mutation?: string
  path: string
  query: [string, string][]
  body?: string
  contentType?: string
  /** The status the document says this request gets, when it says exactly one. */
  expected?: number
}

/** Operations that change a container: they get only containers the fuzzer may change. */
const CHANGES = new Set([
  'startContainer',
  'stopContainer',
  'restartContainer',
  'killContainer',
  'deleteContainer',
  'waitContainer',
])

/**
 * The operation an operation is, on whichever engine's path: `/v1/engines/{engine}/…`
 * (`…OnEngine`) is the same route as `/v1/…`, with the same rules for what it may touch.
 */
const baseId = (op: Operation) => op.operationId.replace(/OnEngine$/, '')

/** A reference that can never name another test's container: missing, or this run's own. */
const missingRef = fc.stringMatching(/^[a-z0-9]{1,8}$/).map((s) => `${RUN}-missing-${s}`)

function idArbitrary(op: Operation): fc.Arbitrary<string> {
  if (baseId(op) === 'deleteContainer') {
    return pool.created.length > 0
      ? fc.oneof(missingRef, fc.constantFrom(...pool.created))
      : missingRef
  }
  const known = CHANGES.has(baseId(op))
    ? [pool.exited, pool.exitedId]
    : [pool.exited, pool.exitedId.slice(0, 12), pool.running]
  return fc.oneof(missingRef, fc.constantFrom(...known))
}

/** Times that name real moments, since ≤ until (a schema cannot say which dates exist). */
const TIMES = {
  since: ['1h', '10m', '90s', '1732860000', '2026-01-01T00:00:00Z'],
  until: ['0s', '1s'],
}

/** Query values the fuzzer sends; for `since`/`until`, `cursor` and `ticket` its own choice. */
function queryArbitrary(op: Operation): fc.Arbitrary<[string, string][]> {
  const entries = op.parameters
    .filter((p) => p.in === 'query' && p.name !== 'cursor' && p.name !== 'ticket')
    .map((p) => {
      const values =
        p.name === 'since' || p.name === 'until'
          ? fc.constantFrom(...TIMES[p.name])
          : p.schema.type === 'array' || p.schema.anyOf?.some((s: JsonSchema) => s.type === 'array')
            ? ofSchema(p.schema)
            : ofSchema(p.schema)
      return fc.option(
        values.map((v) => [p.name, v] as const),
        { nil: undefined },
      )
    })
  return fc.tuple(...entries).map((pairs) =>
    pairs
      .filter((pair): pair is readonly [string, unknown] => pair !== undefined)
      .flatMap(([name, value]) =>
        (Array.isArray(value) ? value : [value]).map((v): [string, string] => [name, String(v)]),
      )
      // Both streams off is refused by a rule the document states only in words.
      .filter(
        ([name, value], _, all) =>
          !(
            name === 'stdout' &&
            value === 'false' &&
            all.some(([n, v]) => n === 'stderr' && v === 'false')
          ),
      ),
  )
}

/** A create body the document allows, on the fuzzer's image and labels, named for this run. */
function bodyArbitrary(op: Operation): fc.Arbitrary<string | undefined> {
  const schema = op.requestBody?.content['application/json']?.schema
  if (!schema) return fc.constant(undefined)
  return ofSchema(schema).map((value) => {
    if (baseId(op) === 'createService') {
      // A real service on the swarm: this run's image, name and labels, no network (the policy
      // names none, a rule no schema states), and no task: tasks of random commands that fail
      // and restart keep a 2-core engine busy enough to slow every other request past its bound
      const { networks: _networks, ...body } = value as Record<string, unknown>
      return JSON.stringify({
        ...body,
        image: IMAGE,
        // Cut short, it must still end in a letter or digit, as the document's pattern says
        name:
          body.name === undefined
            ? undefined
            : `${RUN}-${
                String(body.name)
                  .slice(0, 40)
                  .replace(/[-_]+$/, '') || 'x'
              }`,
        labels: { ...(body.labels as object), ...LABELS },
        replicas: 0,
      })
    }
    if (baseId(op) !== 'createContainer') return JSON.stringify(value)
    const body = value as Record<string, unknown>
    return JSON.stringify({
      ...body,
      image: IMAGE,
      name: body.name === undefined ? undefined : `${RUN}-${String(body.name).slice(0, 40)}`,
      labels: { ...(body.labels as object), ...LABELS },
    })
  })
}

function validSpec(op: Operation): fc.Arbitrary<Spec> {
  return fc
    .record({
      id: op.path.includes('{id}') ? idArbitrary(op) : fc.constant(''),
      ref: op.path.includes('{ref}')
        ? baseId(op) === 'deleteImage'
          ? // Never an image other tests use: only names of this run that no engine has.
            missingRef.map((name) => `dockgate-conformance/${name.toLowerCase()}:gone`)
          : fc.oneof(
              fc.constant(IMAGE),
              ofSchema(op.parameters.find((p) => p.name === 'ref')!.schema),
            )
        : fc.constant(''),
      query: queryArbitrary(op),
      body: bodyArbitrary(op),
    })
    .map(({ id, ref, query, body }) => ({
      op,
      valid: true,
      path: op.path
        .replace('{engine}', 'default')
        .replace('{id}', encodeURIComponent(id))
        .replace('{ref}', encodeURIComponent(String(ref))),
      query,
      body,
      contentType: body === undefined ? undefined : 'application/json',
    }))
}

/** A valid request with one thing the document refuses. */
function invalidSpec(op: Operation): fc.Arbitrary<Spec> {
  const queryParams = op.parameters.filter(
    (p) => p.in === 'query' && p.name !== 'ticket' && p.name !== 'cursor',
  )
  const mutations: fc.Arbitrary<(spec: Spec) => Spec>[] = [
    fc
      .stringMatching(/^[a-z]{3,10}$/)
      .filter((name) => !op.parameters.some((p) => p.name === name))
      .map((name) => (spec: Spec) => ({
        ...spec,
        mutation: `unknown parameter ${name}`,
        query: [...spec.query, [name, '1']],
      })),
  ]
  if (queryParams.length > 0) {
    mutations.push(
      fc
        .tuple(fc.constantFrom(...queryParams), fc.string({ maxLength: 12 }))
        .filter(
          ([p, text]) =>
            !queryValueValidates(p.schema, text) && !(Array.isArray(p.schema.anyOf) && text === ''),
        )
        .map(([p, text]) => (spec: Spec) => ({
          ...spec,
          mutation: `${p.name}=${JSON.stringify(text)}`,
          query: [...spec.query.filter(([n]) => n !== p.name), [p.name, text]],
        })),
    )
  }
  const idParam = op.parameters.find((p) => p.in === 'path')
  if (idParam) {
    mutations.push(
      fc
        .string({ minLength: 1, maxLength: 140 })
        .filter((s) => !validates(idParam.schema, s) && !s.includes('/') && s !== '.' && s !== '..')
        .map((bad) => (spec: Spec) => ({
          ...spec,
          mutation: `${idParam.name}=${JSON.stringify(bad)}`,
          path: op.path
            .replace(`{${idParam.name}}`, encodeURIComponent(bad))
            .replace('{engine}', 'default'),
        })),
    )
  }
  const bodySchema = op.requestBody?.content['application/json']?.schema
  if (bodySchema) {
    mutations.push(
      fc.constantFrom(
        (spec: Spec) => ({
          ...spec,
          mutation: 'an unknown body field',
          body: JSON.stringify({ ...JSON.parse(spec.body ?? '{}'), hostConfig: {} }),
        }),
        (spec: Spec) => ({ ...spec, mutation: 'a body that is not JSON', body: '{"image":' }),
        (spec: Spec) => ({ ...spec, mutation: 'a body that is an array', body: '[]' }),
      ),
    )
  }
  return fc
    .tuple(validSpec(op), fc.oneof(...mutations))
    .map(([spec, mutate]) => ({ ...mutate(spec), valid: false }))
}

// --- sending and checking -----------------------------------------------------------------------

interface Outcome {
  spec: Spec
  status: number
  /** The problem's detail, if the answer was one. */
  detail: string
  problems: string[]
}

const describeSpec = (spec: Spec) =>
  `${spec.op.method} ${spec.path}${spec.query.length ? `?${new URLSearchParams(spec.query)}` : ''}${spec.body ? ` ${spec.body.slice(0, 200)}` : ''}${spec.mutation ? ` [${spec.mutation}]` : ''}`

async function send(spec: Spec): Promise<Outcome> {
  const url = `${node.url}${spec.path}${spec.query.length ? `?${new URLSearchParams(spec.query)}` : ''}`
  const headers: Record<string, string> = { authorization: `Bearer ${tokenOf('admin')}` }
  if (spec.contentType) headers['content-type'] = spec.contentType
  const response = await fetch(url, {
    method: spec.op.method,
    headers,
    body: spec.body,
    signal: AbortSignal.timeout(20_000),
  })
  const problems: string[] = []
  const status = response.status
  let body: unknown
  const listed = spec.op.responses[String(status)]
  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim()
  if (!listed) problems.push(`status ${status} is not listed`)
  else if (!listed.content) {
    if ((await response.arrayBuffer()).byteLength > 0) problems.push(`${status} has a body`)
  } else if (!mediaType || !listed.content[mediaType]) {
    problems.push(`content type ${mediaType} is not listed for ${status}`)
  } else if (mediaType === 'text/event-stream') {
    await response.body?.cancel()
  } else {
    const text = await response.text()
    const schema = listed.content[mediaType]!.schema
    body = mediaType.endsWith('json') ? JSON.parse(text) : text
    if (!validates(schema, body))
      problems.push(`body does not match the schema: ${lastErrors()} ${text.slice(0, 300)}`)
  }
  if (!response.bodyUsed) await response.body?.cancel()
  if (status >= 500) problems.push(`a server error for a caller's request: ${status}`)
  if (spec.valid && status === 400) {
    problems.push(`400 for a request the document allows: ${JSON.stringify(body).slice(0, 400)}`)
  }
  if (
    !spec.valid &&
    status !== (spec.expected ?? 400) &&
    !(spec.mutation === 'a body that is not JSON' && status === 415)
  ) {
    problems.push(`${status}, not ${spec.expected ?? 400}, for a request the document refuses`)
  }
  // What it created, later requests may delete.
  if (baseId(spec.op) === 'createContainer' && status === 201) {
    pool.created.push((body as { id: string }).id)
  }
  const detail = String((body as { detail?: unknown } | undefined)?.detail ?? '')
  return { spec, status, detail, problems }
}

/** Runs specs a few at a time (the engine and the machine are shared). */
async function sendAll(specs: Spec[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  let next = 0
  const worker = async () => {
    while (next < specs.length) {
      const spec = specs[next++]!
      try {
        outcomes.push(await send(spec))
      } catch (error) {
        outcomes.push({ spec, status: 0, detail: '', problems: [`no answer: ${String(error)}`] })
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  return outcomes
}

function report(outcomes: Outcome[]) {
  const failures: string[] = []
  for (const { spec, status, detail, problems } of outcomes) {
    if (problems.length === 0) continue
    const known = KNOWN.find(
      (k) => k.operationId === baseId(spec.op) && k.status === status && k.detail.test(detail),
    )
    const line = `${spec.op.operationId}: ${problems.join('; ')}\n    ${describeSpec(spec)}`
    if (known) console.warn(`known (${known.item}): ${line}`)
    else failures.push(line)
  }
  return failures
}

/** Each operation at the document's limits: the longest query it allows, a body over 64 KiB. */
function limitSpecs(): Spec[] {
  const specs: Spec[] = []
  // The most label selectors of 256 characters, every one percent-encoded as three UTF-8 bytes.
  const selector = `k=${'€'.repeat(254)}`
  for (const op of OPERATIONS.filter((o) => o.parameters.some((p) => p.name === 'label'))) {
    const labels = op.parameters.find((p) => p.name === 'label')!.schema
    const most = labels.anyOf.find((s: JsonSchema) => s.type === 'array').maxItems as number
    specs.push({
      op,
      valid: true,
      mutation: `${most} label selectors of 256 characters`,
      path: op.path.replace('{engine}', 'default'),
      query: Array.from({ length: most }, (): [string, string] => ['label', selector]),
    })
  }
  const oversized = JSON.stringify({ image: IMAGE, cmd: ['x'.repeat(70 * 1024)] })
  for (const op of OPERATIONS.filter((o) => o.method === 'POST' || o.method === 'DELETE')) {
    specs.push({
      op,
      valid: false,
      mutation: 'a body over 64 KiB',
      path: op.path.replace('{id}', `${RUN}-missing`).replace('{engine}', 'default'),
      query: [],
      body: oversized,
      contentType: 'application/json',
      expected: 413,
    })
  }
  return specs
}

describe(`requests generated from openapi/openapi.json (seed ${SEED})`, () => {
  it('answers requests at the document’s limits as it says: no 431, 413 where listed', async () => {
    const outcomes = await sendAll(limitSpecs())
    expect(outcomes.length).toBeGreaterThanOrEqual(9)
    expect(report(outcomes)).toEqual([])
  }, 60_000)

  it('answers every valid request as the document says, never 400 or 5xx', async () => {
    const specs = OPERATIONS.flatMap((op, i) =>
      fc.sample(validSpec(op), { numRuns: VALID_RUNS, seed: SEED + i }),
    )
    const outcomes = await sendAll(specs)
    expect(outcomes.length).toBe(specs.length)
    expect(report(outcomes)).toEqual([])
  }, 120_000)

  it('answers every request the document refuses with a 400 problem', async () => {
    const specs = OPERATIONS.flatMap((op, i) =>
      fc.sample(invalidSpec(op), { numRuns: INVALID_RUNS, seed: SEED + 100 + i }),
    )
    const outcomes = await sendAll(specs)
    expect(outcomes.length).toBe(specs.length)
    expect(report(outcomes)).toEqual([])
  }, 120_000)
})
