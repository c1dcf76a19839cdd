/**
 * Exec on the real engine through each Node wire (unix socket, TCP, TLS with client
 * certificates): the hijacked start read as an ordinary body, and the upgraded session with
 * stdin, end of input, a TTY and its resize.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { inspectExec, openExecSession, resizeExec } from '../../src/engine/exec.ts'
import { runExec } from '../../src/engine/exec-run.ts'
import { FrameDecoder, type LogFrame } from '../../src/streams/demux.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { createDirect, direct, testEngineEnv } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const env = testEngineEnv()
const wires = [
  ['unix socket', { DOCKER_HOST: env.dockerHost }],
  ['TCP', { DOCKER_HOST: env.tcpHost }],
  [
    'TLS with client certificates',
    { DOCKER_HOST: env.tlsHost, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: env.tlsCertPath },
  ],
] as const

const USER = { user: '65534:65534', env: {} }
let box: string

beforeAll(async () => {
  box = await createDirect({
    name: uniqueName('exec-engine'),
    cmd: ['sleep', '600'],
    labels: { [TEST_LABEL]: TEST_RUN },
  })
  expect((await direct(`/containers/${box}/start`, { method: 'POST' })).status).toBe(204)
})

afterAll(async () => {
  await direct(`/containers/${box}?force=1`, { method: 'DELETE' })
})

const decoder = new TextDecoder()

/** Reads a multiplexed stream to its end: the text of each stream. */
async function drain(readable: ReadableStream<Uint8Array>) {
  const frames = new FrameDecoder()
  const text = { stdout: '', stderr: '' } as Record<string, string>
  for await (const chunk of readable as unknown as AsyncIterable<Uint8Array>) {
    frames.push(chunk, (f: LogFrame) => {
      text[f.stream] = (text[f.stream] ?? '') + decoder.decode(f.payload)
    })
  }
  return text
}

describe.each(wires)('exec through the %s', (_name, dockerEnv) => {
  let engine: EngineClient
  beforeAll(() => {
    expect(dockerEnv.DOCKER_HOST, 'scripts/engine.sh up must provide this wire').toBeDefined()
    engine = new EngineClient(createNodeTransport(engineTargetFromEnv(dockerEnv)))
  })
  afterAll(() => engine.transport.close())

  it('runs a command to its end: output apart, exit code', async () => {
    const out: string[] = []
    const end = await runExec(
      engine,
      box,
      { ...USER, cmd: ['sh', '-c', 'echo a; sleep 0.2; echo b >&2; exit 2'] },
      {
        timeoutMs: 10_000,
        signal: new AbortController().signal,
        onFrame: (f) => {
          out.push(`${f.stream}:${decoder.decode(f.payload)}`)
        },
      },
    )
    expect(end).toEqual({ exitCode: 2, timedOut: false })
    expect(out).toEqual(['stdout:a\n', 'stderr:b\n'])
  })

  it('opens a session: stdin reaches the command, its end ends it', async () => {
    const session = await openExecSession(
      engine,
      box,
      { ...USER, cmd: ['cat'], tty: false },
      new AbortController().signal,
    )
    await session.connection.write(new TextEncoder().encode('hello\n'))
    await session.connection.closeWrite()
    expect(await drain(session.connection.readable)).toEqual({ stdout: 'hello\n', stderr: '' })
    expect((await inspectExec(engine, session.id)).ExitCode).toBe(0)
  })

  it('opens a TTY session that can be resized', async () => {
    const session = await openExecSession(
      engine,
      box,
      { ...USER, cmd: ['sh', '-c', 'read line; stty size; exit 4'], tty: true },
      new AbortController().signal,
    )
    await resizeExec(engine, session.id, { rows: 33, cols: 101 })
    await session.connection.write(new TextEncoder().encode('go\r'))
    let text = ''
    for await (const chunk of session.connection.readable as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk)
    }
    expect(text).toContain('33 101')
    expect((await inspectExec(engine, session.id)).ExitCode).toBe(4)
  })

  it('refuses a session on a stopped container with the engine’s 409, as a problem', async () => {
    const stopped = await createDirect({
      name: uniqueName('exec-stopped'),
      cmd: ['true'],
      labels: { [TEST_LABEL]: TEST_RUN },
    })
    try {
      await expect(
        openExecSession(
          engine,
          stopped,
          { ...USER, cmd: ['cat'], tty: false },
          new AbortController().signal,
        ),
      ).rejects.toMatchObject({ status: 409 })
    } finally {
      await direct(`/containers/${stopped}?force=1`, { method: 'DELETE' })
    }
  })
})
