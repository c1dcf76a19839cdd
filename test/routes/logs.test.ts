import { beforeAll, describe, expect, it } from 'vitest'
import { runDirect, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

let gw: TestGateway

/** Runs a container through the gateway until it exits, and answers its id. */
async function runToExit(cmd: string[], tty = false) {
  const { body } = await gw.json(
    '/v1/containers?start=true',
    postJson({
      image: testEngineEnv().image,
      name: uniqueName('logs'),
      cmd,
      tty,
      labels: { [TEST_LABEL]: TEST_RUN },
    }),
  )
  await gw.call(`/v1/containers/${body.id}/wait`, { method: 'POST' })
  return body.id as string
}

const texts = (lines: { stream: string; text: string }[], stream?: string) =>
  lines.filter((l) => !stream || l.stream === stream).map((l) => l.text)

beforeAll(async () => {
  gw = await testGateway()
})

describe('GET /v1/containers/{id}/logs', () => {
  it('demultiplexes stdout and stderr into lines with engine timestamps', async () => {
    const id = await runToExit(['sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2'])
    const { status, body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(status).toBe(200)
    expect(body.truncated).toBe(false)
    expect(texts(body.lines, 'stdout')).toEqual(['out1', 'out2'])
    expect(texts(body.lines, 'stderr')).toEqual(['err1', 'err2'])
    for (const line of body.lines)
      expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    expect(JSON.stringify(body)).not.toMatch(/\\u000[0-2]/)
  })

  it('selects one stream with stdout/stderr', async () => {
    const id = await runToExit(['sh', '-c', 'echo out; echo err >&2'])
    expect(texts((await gw.json(`/v1/containers/${id}/logs?stdout=false`)).body.lines)).toEqual([
      'err',
    ])
    expect(texts((await gw.json(`/v1/containers/${id}/logs?stderr=false`)).body.lines)).toEqual([
      'out',
    ])
  })

  it('reads a TTY container’s raw stream as lines without carriage returns', async () => {
    const id = await runToExit(['sh', '-c', 'echo tty1; echo tty2 >&2; printf "a\\tb\\n"'], true)
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(body.lines).toEqual([
      expect.objectContaining({ stream: 'stdout', text: 'tty1' }),
      expect.objectContaining({ stream: 'stdout', text: 'tty2' }),
      expect.objectContaining({ stream: 'stdout', text: 'a\tb' }),
    ])
  })

  it('rejoins a line over 16 KB that the engine split into several frames', async () => {
    const id = await runToExit([
      'sh',
      '-c',
      "head -c 40000 /dev/zero | tr '\\0' a; echo; echo after",
    ])
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(body.lines.map((l: { text: string }) => l.text.length)).toEqual([40000, 5])
    expect(body.lines[0].text).toBe('a'.repeat(40000))
  })

  it('rejoins a long line from a TTY container too', async () => {
    const id = await runToExit(
      ['sh', '-c', "head -c 40000 /dev/zero | tr '\\0' b; echo; echo end"],
      true,
    )
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(texts(body.lines)).toEqual(['b'.repeat(40000), 'end'])
  })

  it('keeps a last line written without a newline', async () => {
    const id = await runToExit(['sh', '-c', 'echo first; printf nonewline'])
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(texts(body.lines)).toEqual(['first', 'nonewline'])
  })

  it('keeps UTF-8 intact', async () => {
    const id = await runToExit(['sh', '-c', 'echo "grüße ✓ 日本"'])
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(texts(body.lines)).toEqual(['grüße ✓ 日本'])
  })

  it('reads logs of a container created outside the gateway', async () => {
    const name = uniqueName('direct')
    await runDirect({
      name,
      cmd: ['sh', '-c', 'echo from-outside'],
      labels: { [TEST_LABEL]: TEST_RUN },
    })
    const { body } = await gw.json(`/v1/containers/${name}/logs`)
    expect(texts(body.lines)).toEqual(['from-outside'])
  })

  it('honours tail, since and until with exact engine timestamps', async () => {
    const id = await runToExit(['sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done'])
    const all = (await gw.json(`/v1/containers/${id}/logs`)).body.lines
    expect(texts(all)).toEqual(['line1', 'line2', 'line3', 'line4', 'line5'])
    expect(texts((await gw.json(`/v1/containers/${id}/logs?tail=2`)).body.lines)).toEqual([
      'line4',
      'line5',
    ])
    expect((await gw.json(`/v1/containers/${id}/logs?tail=0`)).body.lines).toEqual([])

    // RFC 3339 with nanoseconds is inclusive at nanosecond precision, as the engine is.
    const since = encodeURIComponent(all[2].time)
    const until = encodeURIComponent(all[3].time)
    const window = await gw.json(`/v1/containers/${id}/logs?since=${since}&until=${until}`)
    expect(texts(window.body.lines)).toEqual(['line3', 'line4'])
    expect(texts((await gw.json(`/v1/containers/${id}/logs?since=1h`)).body.lines)).toHaveLength(5)
    const unix = Math.floor(Date.parse(all[0].time) / 1000) - 1
    expect(
      texts((await gw.json(`/v1/containers/${id}/logs?since=${unix}`)).body.lines),
    ).toHaveLength(5)
  })

  it('says truncated when more lines match than one answer carries', async () => {
    const small = await testGateway({ settings: { logsMaxLines: 3 } })
    const id = await runToExit(['sh', '-c', 'seq 1 10'])
    const { body } = await small.json(`/v1/containers/${id}/logs`)
    expect(body).toMatchObject({ truncated: true })
    expect(texts(body.lines)).toEqual(['1', '2', '3'])
  })

  it('bounds an answer by bytes: a large log answers at most 1 MiB of line text and says truncated', async () => {
    // 4,000 lines of 2,000 characters: 8 MB, far below the 10,000-line bound.
    const id = await runToExit([
      'sh',
      '-c',
      'yes "$(head -c 1999 /dev/zero | tr "\\0" x)" | head -n 4000',
    ])
    const response = await gw.call(`/v1/containers/${id}/logs`)
    expect(response.status).toBe(200)
    const text = await response.text()
    const body = JSON.parse(text)
    expect(body.truncated).toBe(true)
    const textBytes = body.lines.reduce(
      (sum: number, l: { text: string }) => sum + l.text.length,
      0,
    )
    expect(body.lines[0].text).toBe('x'.repeat(1999))
    expect(textBytes).toBeLessThanOrEqual(1024 * 1024)
    // What one more line would have passed the bound.
    expect(textBytes + 1999).toBeGreaterThan(1024 * 1024)
    expect(text.length).toBeLessThan(1.2 * 1024 * 1024)
  })

  it('counts the bytes of UTF-8 text, not characters, and always carries the first line', async () => {
    const small = await testGateway({ settings: { logsMaxBytes: 25 } })
    // Each line: 5 characters, 10 bytes.
    const id = await runToExit(['sh', '-c', 'for i in 1 2 3 4 5; do echo ééééé; done'])
    const { body } = await small.json(`/v1/containers/${id}/logs`)
    expect(body).toMatchObject({ truncated: true })
    expect(texts(body.lines)).toEqual(['ééééé', 'ééééé'])
    const tiny = await testGateway({ settings: { logsMaxBytes: 4 } })
    const first = await tiny.json(`/v1/containers/${id}/logs`)
    expect(first.body).toMatchObject({ truncated: true })
    expect(texts(first.body.lines)).toEqual(['ééééé'])
  })

  it.each([
    ['since=yesterday', 'query.since'],
    ['since=2026-13-01T00:00:00Z', 'query.since'],
    ['until=-5', 'query.until'],
    ['tail=abc', 'query.tail'],
    ['tail=-1', 'query.tail'],
    ['stdout=false&stderr=false', 'query.stdout'],
    ['since=2000&until=1000', 'query.since'],
  ])('refuses %s (the engine would answer 500 or ignore it)', async (query, param) => {
    const { status, body } = await gw.json(`/v1/containers/anything/logs?${query}`)
    expect(status).toBe(400)
    expect(body.invalidParams.map((p: { name: string }) => p.name)).toContain(param)
  })

  it('answers 404 for a missing container', async () => {
    const { status } = await gw.json('/v1/containers/dockgate-no-such/logs')
    expect(status).toBe(404)
  })
})
