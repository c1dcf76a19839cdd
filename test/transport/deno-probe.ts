/**
 * Run by Deno (test/transport/deno.test.ts): an exec's output through the engine client over the
 * Deno transport (src/transport/deno.ts: its upgraded connection, read ahead of the consumer), to
 * the engine `DOCKER_HOST` names. `held` (the default): a long output taken by a consumer that
 * holds its first frame until the engine has ended it. `broken`: an endless output whose
 * connection the test cuts once this prints `cut` (DOCKER_HOST is then the test's fault proxy).
 * Prints one JSON line of what it saw.
 */
import { EngineClient } from '../../src/engine/client.ts'
import { inspectExec } from '../../src/engine/exec.ts'
import { runExec } from '../../src/engine/exec-run.ts'
import { createDenoTransport } from '../../src/transport/deno.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'

// Deno's `process` (the `Deno` namespace has no typings in this project's tsc)
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const transport = createDenoTransport(engineTargetFromEnv(process.env))
const client = new EngineClient(transport)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Until none of the container's execs runs, and a moment more for the engine to close their connections. */
async function execsEnded(id: string) {
  for (;;) {
    const { ExecIDs } = (await client.json('GET', `/containers/${id}/json`)) as {
      ExecIDs: string[] | null
    }
    const inspects = await Promise.all((ExecIDs ?? []).map((exec) => inspectExec(client, exec)))
    if (!inspects.some((inspect) => inspect.Running)) break
    await sleep(50)
  }
  await sleep(500)
}

/**
 * `seq 1 40000` (229 KB, less than the 256 KiB read ahead): with the first frame held, the rest
 * of the output and its end are read into the queue before the consumer takes any of it.
 */
async function heldLongOutput() {
  return await inContainer(async (id) => {
    const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() }
    const text = { stdout: '', stderr: '' }
    let held = false
    const end = await runExec(
      client,
      id,
      { cmd: ['sh', '-c', 'seq 1 40000; echo done >&2'], env: {}, user: '65534:65534' },
      {
        timeoutMs: 20_000,
        signal: new AbortController().signal,
        async onFrame(frame) {
          if (!held) {
            held = true
            await execsEnded(id)
          }
          if (frame.stream === 'stdout' || frame.stream === 'stderr')
            text[frame.stream] += decoder[frame.stream].decode(frame.payload, { stream: true })
        },
      },
    ).catch(failure)
    const expected = Array.from({ length: 40_000 }, (_, i) => `${i + 1}\n`).join('')
    return {
      end,
      stdoutLength: text.stdout.length,
      stdoutWhole: text.stdout === expected,
      stderr: text.stderr,
    }
  })
}

/** An endless output whose connection breaks: how its reading ends, and whether the loop was stopped. */
async function brokenOutput() {
  return await inContainer(async (id) => {
    let frames = 0
    const end = await runExec(
      client,
      id,
      { cmd: ['sh', '-c', 'while true; do echo tick; done'], env: {}, user: '65534:65534' },
      {
        timeoutMs: 20_000,
        signal: new AbortController().signal,
        onFrame() {
          if (++frames === 5) console.log('cut')
        },
      },
    ).catch(failure)
    return { end, loopsLeft: await loopsAfter(id, 10_000) }
  })
}

/** The container's `while true` loops still running once they stopped, or after `ms`. */
async function loopsAfter(id: string, ms: number) {
  const until = Date.now() + ms
  for (;;) {
    const { Processes } = (await client.json('GET', `/containers/${id}/top`, {
      query: { ps_args: '-ef' },
    })) as { Processes: string[][] }
    const loops = Processes.filter((p) => p.join(' ').includes('while true')).length
    if (loops === 0 || Date.now() > until) return loops
    await sleep(100)
  }
}

const failure = (error: Error & { status?: number }) => ({
  error: `${error.name}: ${error.message}`,
  status: error.status,
})

async function inContainer<T>(use: (id: string) => Promise<T>): Promise<T> {
  const created = (await client.json('POST', '/containers/create', {
    body: { Image: image, Cmd: ['sleep', '60'] },
    query: { name: `dgt-deno-probe-${process.pid}-${Date.now().toString(36)}` },
  })) as { Id: string }
  try {
    await client.status('POST', `/containers/${created.Id}/start`)
    return await use(created.Id)
  } finally {
    await client.status('DELETE', `/containers/${created.Id}`, { query: { force: '1' } })
  }
}

const seen = process.argv[2] === 'broken' ? await brokenOutput() : await heldLongOutput()
console.log(JSON.stringify({ description: transport.description, ...seen }))
await transport.close()
// Timers of the engine calls (their timeouts) would hold the process for their full length
process.exit(0)
