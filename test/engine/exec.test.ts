/**
 * Exec on the real engine through each Node wire (unix socket, TCP, TLS with client
 * certificates): the output of a start read off the upgraded connection (and, through the edge's
 * fetch transport, which cannot upgrade, as an ordinary body), and the upgraded session with
 * stdin, end of input, a TTY and its resize.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { inspectExec, openExecSession, resizeExec, startExec } from '../../src/engine/exec.ts'
import { COALESCED_BYTES, runExec } from '../../src/engine/exec-run.ts'
import { ProblemError } from '../../src/errors.ts'
import { FrameDecoder, type LogFrame } from '../../src/streams/demux.ts'
import { PushedByteStream } from '../../src/streams/pushed.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createFetchTransport } from '../../src/transport/fetch.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { SLAB_BYTES } from '../../src/transport/node-reads.ts'
import { createDirect, direct, engineWires, testEngineEnv } from '../support/engine.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const env = testEngineEnv()
const wires = engineWires(env)

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

/** `seq 1 N` as the command writes it. */
const seq = (n: number) => `${Array.from({ length: n }, (_, i) => i + 1).join('\n')}\n`

/**
 * Runs `seq 1 N` (2.7 MB, ten times the read-ahead) with a consumer that yields to the event loop
 * on every frame, so the output waits while it works: what `runExec` hands on, and how it batched it.
 */
async function runLongOutput(engine: EngineClient) {
  const chunks: Uint8Array[] = []
  const batches: number[] = []
  let batch = 0
  const end = await runExec(
    engine,
    box,
    { ...USER, cmd: ['seq', '1', '400000'] },
    {
      timeoutMs: 30_000,
      signal: new AbortController().signal,
      onFrame: async (frame) => {
        chunks.push(frame.payload.slice())
        batch += frame.payload.length
        await new Promise((resolve) => setTimeout(resolve, 0))
      },
      onChunkEnd: () => {
        batches.push(batch)
        batch = 0
      },
    },
  )
  return { end, text: decoder.decode(Buffer.concat(chunks)), batches, left: batch }
}

/** How many `while true` loops (of the test that leaves mid-output) run in the container. */
async function loopsRunning(): Promise<number> {
  const top = (await (await direct(`/containers/${box}/top?ps_args=-ef`)).json()) as {
    Processes: string[][]
  }
  return top.Processes.filter((p) => p.join(' ').includes('while true')).length
}

function expectLongOutput(run: Awaited<ReturnType<typeof runLongOutput>>) {
  expect(run.end).toEqual({ exitCode: 0, timedOut: false })
  expect(run.text.length).toBe(seq(400_000).length)
  expect(run.text === seq(400_000)).toBe(true)
  // Every frame was followed by an `onChunkEnd` (nothing left unwritten), and while output
  // waited, frames were batched: fewer batches than the engine's 32 KiB frames, none past the
  // bound by more than one read of the socket (at most a slab on Node: src/transport/node-reads.ts)
  // and one frame begun in an earlier read.
  expect(run.left).toBe(0)
  expect(run.batches.length).toBeLessThan(run.text.length / (32 * 1024))
  expect(Math.max(...run.batches)).toBeLessThanOrEqual(COALESCED_BYTES + SLAB_BYTES + 32 * 1024)
}

/** A command writing to stdout, then stderr, then exiting 2: each frame on its stream, the code. */
async function expectOutputApartAndExitCode(engine: EngineClient) {
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
}

describe('exec through the edge’s fetch transport (TCP, no upgrade)', () => {
  let engine: EngineClient
  beforeAll(() => {
    expect(env.tcpHost, 'scripts/engine.sh up must provide the TCP wire').toBeDefined()
    const origin = (env.tcpHost ?? '').replace(/^tcp:/, 'http:')
    engine = new EngineClient(createFetchTransport(origin))
    expect(engine.canUpgrade).toBe(false)
  })

  it('reads the output as the start’s body: output apart, exit code', () =>
    expectOutputApartAndExitCode(engine))

  // Not the long output with a slow consumer here: undici, which answers `fetch` in this test
  // process, failed an assertion (`!this.paused`, client-h1.js) when the engine closed the
  // connection of a body it had paused; an edge runtime's fetch is not undici.
})

describe('exec output through a connection that breaks mid-output', () => {
  it.each([
    ['reset', 'cut'],
    ['ended as if the engine had sent all (a clean end while the command runs)', 'end'],
  ] as const)('fails with a 502 problem, and the command is stopped: %s', async (_how, fault) => {
    expect(env.tcpHost, 'scripts/engine.sh up must provide the TCP wire').toBeDefined()
    const tcp = new URL(env.tcpHost!.replace(/^tcp:/, 'http:'))
    const proxy = await startFaultProxy({ host: tcp.hostname, port: Number(tcp.port) })
    const proxied = createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: proxy.dockerHost }))
    try {
      let frames = 0
      const run = runExec(
        new EngineClient(proxied),
        box,
        { ...USER, cmd: ['sh', '-c', 'while true; do echo tick; done'] },
        {
          timeoutMs: 30_000,
          signal: new AbortController().signal,
          onFrame: () => {
            // This connection is gone; the engine stays reachable
            if (++frames === 5) proxy[fault]()
          },
        },
      )
      const failure = await run.catch((error: unknown) => error)
      expect(failure).toBeInstanceOf(ProblemError)
      expect(failure).toMatchObject({ status: 502, code: 'engine-error' })
      await expect.poll(() => loopsRunning(), { timeout: 10_000 }).toBe(0)
    } finally {
      await proxied.close()
      await proxy.close()
    }
  })
})

describe.each(wires)('exec through the %s', (_name, dockerEnv) => {
  let engine: EngineClient
  beforeAll(() => {
    expect(dockerEnv.DOCKER_HOST, 'scripts/engine.sh up must provide this wire').toBeDefined()
    engine = new EngineClient(createNodeTransport(engineTargetFromEnv(dockerEnv)))
  })
  afterAll(() => engine.transport.close())

  it('runs a command to its end: output apart, exit code', () =>
    expectOutputApartAndExitCode(engine))

  it('hands on a long output whole, in order, in batches, to a consumer slower than the engine', async () => {
    expectLongOutput(await runLongOutput(engine))
  })

  it('hands the output over in the socket’s own read callback (a pushed stream)', async () => {
    const caller = new AbortController()
    const started = await startExec(engine, box, { ...USER, cmd: ['true'] }, caller.signal)
    expect(started.output).toBeInstanceOf(PushedByteStream)
    await started.output.cancel()
  })

  it('stops the command and reading when the caller leaves mid-output', async () => {
    const caller = new AbortController()
    let frames = 0
    const run = runExec(
      engine,
      box,
      { ...USER, cmd: ['sh', '-c', 'while true; do echo tick; done'] },
      {
        timeoutMs: 30_000,
        signal: caller.signal,
        onFrame: () => {
          if (++frames === 5) caller.abort(new Error('caller left'))
        },
      },
    )
    await expect(run).rejects.toThrow('caller left')
    // The tagged loop is killed (by a second exec, after the caller was answered)
    await expect.poll(() => loopsRunning(), { timeout: 10_000 }).toBe(0)
  })

  it('ends reading when the connection is closed from this side', async () => {
    const session = await openExecSession(
      engine,
      box,
      { ...USER, cmd: ['cat'], tty: false },
      new AbortController().signal,
    )
    const reader = session.connection.readable.getReader()
    const pending = reader.read()
    session.connection.close()
    expect((await pending).done).toBe(true)
    // The engine saw the connection go: the command's input ended, and with it the command
    await expect
      .poll(async () => (await inspectExec(engine, session.id)).Running, { timeout: 10_000 })
      .toBe(false)
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
