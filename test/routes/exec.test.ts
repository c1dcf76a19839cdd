/**
 * `POST /v1/containers/{id}/exec` against the real engine: JSON and event-stream answers, the
 * policy's user and timeout, ownership, and bad input that never reaches the engine (the
 * engine's own events show no exec).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { EXEC_MAX_OUTPUT_BYTES } from '../../src/routes/exec.ts'
import { direct, engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { engineEvents, engineNow } from '../support/reliability.ts'
import { readSse } from '../support/sse.ts'

const PROBE = `exec-${process.pid}-${Date.now().toString(36)}`
const LABELS = { [TEST_LABEL]: TEST_RUN, 'dockgate-probe': PROBE }
const EXEC_SCOPES = ['containers:read', 'containers:write', 'exec'] as const
const ALLOWED = {
  images: ['*'],
  exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 20 },
}

const audit: AuditEntry[] = []
let gw: TestGateway
/** A running container of `runner`'s. */
let box: string

beforeAll(async () => {
  gw = await testGateway({
    audit,
    clients: {
      runner: { scopes: [...EXEC_SCOPES], policy: ALLOWED },
      stranger: { scopes: [...EXEC_SCOPES], policy: ALLOWED },
      forbidden: { scopes: [...EXEC_SCOPES], policy: { images: ['*'] } },
      unscoped: { scopes: ['containers:read', 'containers:write'], policy: ALLOWED },
      rooted: {
        scopes: [...EXEC_SCOPES],
        policy: { images: ['*'], exec: { allowed: true, user: '0:0', maxTimeoutSeconds: 60 } },
      },
    },
  })
  box = await create('runner', ['sleep', '600'])
})

afterAll(async () => {
  for (const id of await engineContainerIds(`dockgate-probe=${PROBE}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
})

async function create(role: string, cmd: string[], start = true) {
  const { status, body } = await gw.json(
    `/v1/containers?start=${start}`,
    postJson({ image: testEngineEnv().image, name: uniqueName('exec'), cmd, labels: LABELS }, role),
  )
  expect(status, JSON.stringify(body)).toBe(201)
  return body.id as string
}

const exec = (body: unknown, role = 'runner', id = box) =>
  gw.json(`/v1/containers/${id}/exec`, postJson(body, role))

/** The container's processes, as the engine lists them (`top`). */
async function processes(id: string): Promise<string[]> {
  const answer = await direct(`/containers/${id}/top`)
  return (answer.json() as { Processes: string[][] }).Processes.map((p) => p.join(' '))
}

async function eventually(check: () => Promise<boolean>, ms = 10_000) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('not within time')
}

describe('POST /v1/containers/{id}/exec as JSON', () => {
  it('answers the exit code with stdout and stderr apart, as the policy’s user', async () => {
    const { status, body } = await exec({
      cmd: ['sh', '-c', 'echo out; echo err >&2; id -u; exit 3'],
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toEqual({
      exitCode: 3,
      stdout: 'out\n65534\n',
      stderr: 'err\n',
      truncated: false,
      timedOut: false,
    })
  })

  it('runs as root only when the policy names root', async () => {
    const mine = await create('rooted', ['sleep', '600'])
    const { status, body } = await exec({ cmd: ['id', '-u'] }, 'rooted', mine)
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.stdout).toBe('0\n')
    // Even as root, not privileged: the bounding set is the container's (CapDrop ALL)
    const caps = await exec({ cmd: ['grep', 'CapBnd', '/proc/self/status'] }, 'rooted', mine)
    expect(caps.body.stdout).toMatch(/^CapBnd:\s+0+\n$/)
  })

  it('passes env and workingDir; the audit line says who ran what where, env values redacted', async () => {
    const { status, body } = await exec({
      cmd: ['sh', '-c', 'echo "$SECRET_THING" $(pwd)'],
      env: { SECRET_THING: 'hunter2-value' },
      workingDir: '/tmp',
    })
    expect(status).toBe(200)
    expect(body.stdout).toBe('hunter2-value /tmp\n')
    const line = audit.findLast((e) => e.action === `POST /v1/containers/${box}/exec`)
    expect(line).toMatchObject({
      principal: 'runner',
      outcome: 'allowed',
      status: 200,
      exec: {
        container: box,
        cmd: ['sh', '-c', 'echo "$SECRET_THING" $(pwd)'],
        env: { SECRET_THING: null },
        user: '65534:65534',
        workingDir: '/tmp',
      },
    })
    expect(JSON.stringify(audit)).not.toContain('hunter2-value')
  })

  it('holds at most 1 MiB of output and says truncated, the command still running to its end', async () => {
    const { status, body } = await exec({
      cmd: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\000" a; echo done >&2; exit 7'],
    })
    expect(status).toBe(200)
    expect(body.truncated).toBe(true)
    expect(body.exitCode).toBe(7)
    expect(body.stdout.length + body.stderr.length).toBeLessThanOrEqual(EXEC_MAX_OUTPUT_BYTES)
    expect(body.stdout).toMatch(/^a+$/)
  })

  it('kills a command that runs past its timeout', async () => {
    const started = Date.now()
    const { status, body } = await exec({
      cmd: ['sh', '-c', 'echo begun; sleep 300'],
      timeoutSeconds: 1,
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({ timedOut: true, exitCode: 137, stdout: 'begun\n' })
    expect(Date.now() - started).toBeLessThan(8_000)
    expect((await processes(box)).some((p) => p.includes('sleep 300'))).toBe(false)
  })

  it('answers once the command exits, with its own exit code, leaving what it put in the background running (README)', async () => {
    const marker = `sleep 4${Math.floor(Math.random() * 100)}`
    const started = Date.now()
    const { status, body } = await exec({
      cmd: ['sh', '-c', `${marker} & echo left; exit 3`],
      timeoutSeconds: 20,
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({ exitCode: 3, timedOut: false, stdout: 'left\n' })
    // The engine ends the output ~2 s after the exit while the child still holds it, not at the timeout.
    expect(Date.now() - started).toBeLessThan(10_000)
    expect((await processes(box)).some((p) => p.includes(marker))).toBe(true)
  })

  it('runs a command that closes its own output to its exit: the engine ends the output only then, so no cut is seen', async () => {
    // An output that ends while the exec still runs is taken for a cut connection (runExec): the
    // engine keeps it open until the exit even when the command closed its stdout and stderr.
    const { status, body } = await exec({
      cmd: ['sh', '-c', 'echo before; exec >&- 2>&-; sleep 2; exit 4'],
      timeoutSeconds: 20,
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({ exitCode: 4, timedOut: false, stdout: 'before\n' })
  })

  it('answers 400 in fixed words when the command cannot run', async () => {
    const { status, body } = await exec({ cmd: ['no-such-command'] })
    expect(status).toBe(400)
    expect(body.detail).toMatch(/could not be run/)
    expect(JSON.stringify(body)).not.toMatch(/OCI|runc|exec failed/)
  })

  it('answers 409 for a container that is not running', async () => {
    const stopped = await create('runner', ['true'], false)
    const { status, body } = await exec({ cmd: ['true'] }, 'runner', stopped)
    expect(status).toBe(409)
    expect(body.detail).toBe('The container is not running')
  })
})

describe('POST /v1/containers/{id}/exec as an event stream', () => {
  const stream = (body: unknown) =>
    gw.call(`/v1/containers/${box}/exec`, {
      ...postJson(body, 'runner'),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })

  it('sends stdout and stderr as they come, then end with the exit code', async () => {
    const response = await stream({
      cmd: ['sh', '-c', 'echo one; sleep 0.3; echo two >&2; exit 5'],
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = await readSse(response).until('end')
    const output = events.filter((e) => e.event === 'stdout' || e.event === 'stderr')
    expect(output.map((e) => [e.event, JSON.parse(e.data).text])).toEqual([
      ['stdout', 'one\n'],
      ['stderr', 'two\n'],
    ])
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ exitCode: 5, timedOut: false })
  })

  it('shows a character the output began and never finished as the JSON answer does', async () => {
    // printf's octal escapes: "a", then the first byte of a three-byte character, and nothing else
    const cmd = ['sh', '-c', "printf 'a\\342'; printf 'b\\342' >&2"]
    const events = await readSse(await stream({ cmd })).until('end')
    const text = (name: string) =>
      events
        .filter((e) => e.event === name)
        .map((e) => JSON.parse(e.data).text)
        .join('')
    expect([text('stdout'), text('stderr')]).toEqual(['a\uFFFD', 'b\uFFFD'])
    const { body } = await gw.json(`/v1/containers/${box}/exec`, postJson({ cmd }, 'runner'))
    expect([body.stdout, body.stderr]).toEqual(['a\uFFFD', 'b\uFFFD'])
  })

  it('ends in a problem event, without the engine’s words, when the command cannot run', async () => {
    const events = await readSse(await stream({ cmd: ['no-such-command'] })).until('problem')
    expect(events.at(-1)?.event).toBe('problem')
    expect(events.some((e) => e.event === 'stdout')).toBe(false)
    expect(JSON.stringify(events)).not.toMatch(/OCI|runc/)
  })

  it('holds the command while the client reads nothing, then sends all its output in order', async () => {
    // 24 MB of 100-byte lines: more than the sockets' buffers and the stream's own can hold
    const lines = 240_000
    const line = `${'x'.repeat(99)}\n`
    const response = await stream({ cmd: ['sh', '-c', `yes ${'x'.repeat(99)} | head -n ${lines}`] })
    expect(response.status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    // The gateway stopped reading the output (and the command waits on it), not buffering it
    expect((await processes(box)).some((p) => p.includes(`head -n ${lines}`))).toBe(true)
    const events = await readSse(response).until('end')
    const text = events
      .filter((e) => e.event === 'stdout')
      .map((e) => JSON.parse(e.data).text)
      .join('')
    expect(text.length).toBe(lines * line.length)
    expect(text === line.repeat(lines)).toBe(true)
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ exitCode: 0, timedOut: false })
  })

  it('stops the command when the client goes away', async () => {
    const reader = readSse(await stream({ cmd: ['sh', '-c', 'echo up; sleep 301'] }))
    expect((await reader.until('stdout')).at(-1)?.data).toBe('{"text":"up\\n"}')
    expect((await processes(box)).some((p) => p.includes('sleep 301'))).toBe(true)
    await reader.close()
    await eventually(async () => !(await processes(box)).some((p) => p.includes('sleep 301')))
  })
})

describe('GET /v1/containers/{id}/exec/session on a runtime without WebSockets', () => {
  it('answers 426 to a plain GET and 501 to an upgrade (an app built without a WebSocket helper, as on the edge)', async () => {
    const path = `/v1/containers/${box}/exec/session`
    const plain = await gw.json(path, { role: 'runner' })
    expect(plain.status).toBe(426)
    const upgrade = await gw.json(path, {
      role: 'runner',
      headers: { connection: 'Upgrade', upgrade: 'websocket' },
    })
    expect(upgrade.status).toBe(501)
    expect(upgrade.response.headers.get('content-type')).toBe('application/problem+json')
  })
})

describe('who may exec', () => {
  it('answers 404 for another client’s container, as for a missing one', async () => {
    const { status, body } = await exec({ cmd: ['true'] }, 'stranger')
    expect(status).toBe(404)
    expect(body.detail).toBe(`No such container: ${box}`)
  })

  it('answers 403 without the exec scope, and without a policy that allows exec', async () => {
    const unscoped = await exec({ cmd: ['true'] }, 'unscoped')
    expect(unscoped.status).toBe(403)
    expect(unscoped.body.detail).toMatch(/exec scope/)
    const forbidden = await exec({ cmd: ['true'] }, 'forbidden')
    expect(forbidden.status).toBe(403)
    expect(forbidden.body.detail).toMatch(/does not allow exec/)
    expect(audit.findLast((e) => e.principal === 'forbidden')).toMatchObject({
      outcome: 'denied',
      reason: 'exec-not-allowed',
    })
  })

  it('takes no stream ticket: a POST carries its bearer token (401 with ?ticket=)', async () => {
    const issued = await gw.json('/v1/stream-tickets', postJson({}, 'runner'))
    expect(issued.status).toBe(201)
    const answer = await gw.json(`/v1/containers/${box}/exec?ticket=${issued.body.ticket}`, {
      ...postJson({ cmd: ['true'] }, null),
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    })
    expect(answer.status).toBe(401)
  })

  it('answers 403 for a timeout above the policy’s maximum', async () => {
    const { status, body } = await exec({ cmd: ['true'], timeoutSeconds: 21 })
    expect(status).toBe(403)
    expect(body.detail).toMatch(/maximum of 20/)
  })
})

describe('bad input', () => {
  const cases: [string, unknown][] = [
    ['an unknown key', { cmd: ['true'], privileged: true }],
    ['an unknown key (user)', { cmd: ['true'], user: 'root' }],
    ['an empty cmd', { cmd: [] }],
    ['no cmd', {}],
    ['an over-long cmd', { cmd: Array.from({ length: 257 }, () => 'x') }],
    ['an over-long argument', { cmd: ['echo', 'x'.repeat(8 * 1024 + 1)] }],
    ['a NUL byte in cmd', { cmd: ['echo', 'a\u0000b'] }],
    ['a NUL byte in workingDir', { cmd: ['true'], workingDir: '/tmp\u0000x' }],
    ['a relative workingDir', { cmd: ['true'], workingDir: 'tmp' }],
    ['an env key with =', { cmd: ['true'], env: { 'A=B': 'c' } }],
    ['an env key with NUL', { cmd: ['true'], env: { 'A\u0000': 'c' } }],
    ['the gateway’s own env key', { cmd: ['true'], env: { DOCKGATE_EXEC: 'x' } }],
    ['a zero timeout', { cmd: ['true'], timeoutSeconds: 0 }],
    ['a fractional timeout', { cmd: ['true'], timeoutSeconds: 1.5 }],
  ]

  it('answers 400 problems, and the engine runs no exec (its own events)', async () => {
    const since = engineNow()
    for (const [what, body] of cases) {
      const { status, body: problem, response } = await exec(body)
      expect(status, what).toBe(400)
      expect(response.headers.get('content-type'), what).toBe('application/problem+json')
      expect(problem.type, what).toBe('urn:dockgate:problem:validation-failed')
    }
    const query = await gw.call(
      `/v1/containers/${box}/exec?user=root`,
      postJson({ cmd: ['true'] }, 'runner'),
    )
    expect(query.status).toBe(400)
    await new Promise((r) => setTimeout(r, 300))
    const events = await engineEvents(since, engineNow())
    const execs = events.filter((e) => e.Action.startsWith('exec_') && e.Actor.ID === box)
    expect(execs).toEqual([])
  })
})
