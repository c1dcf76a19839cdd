import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeSse, type SseMessage } from '../../src/streams/sse.ts'
import { type ParsedSseEvent, SseParserStream } from '../support/sse-parse.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()

function parse(chunks: readonly string[]): Promise<ParsedSseEvent[]> {
  return collect(readableOf(chunks).pipeThrough(new SseParserStream()))
}

/** As an integration test reads a response body: bytes → text → events. */
function parseBytes(chunks: readonly Uint8Array<ArrayBuffer>[]): Promise<ParsedSseEvent[]> {
  return collect(
    readableOf(chunks).pipeThrough(new TextDecoderStream()).pipeThrough(new SseParserStream()),
  )
}

/** Cuts a string or bytes at the given positions (any order, duplicates allowed, modulo the length). */
function cutAt<T extends string | Uint8Array>(whole: T, positions: readonly number[]): T[] {
  const cuts = [...new Set(positions.map((position) => position % (whole.length + 1)))]
  cuts.sort((a, b) => a - b)
  const chunks: T[] = []
  let start = 0
  for (const cut of [...cuts, whole.length]) {
    chunks.push(whole.slice(start, cut) as T)
    start = cut
  }
  return chunks
}

function lineFree(options: { nul?: boolean } = {}): fc.Arbitrary<string> {
  return fc
    .string({ unit: 'binary' })
    .filter((value) => !/[\r\n]/.test(value) && (options.nul !== false || !value.includes('\0')))
}

const messageArbitrary: fc.Arbitrary<SseMessage> = fc.record(
  {
    comment: fc.string({ unit: 'binary' }),
    event: lineFree(),
    id: lineFree({ nul: false }),
    retry: fc.nat(),
    // SSE cannot carry a carriage return: every line break reaches the client as `\n`
    data: fc.string({ unit: 'binary' }).filter((value) => !value.includes('\r')),
  },
  { requiredKeys: [] },
)

/** What a client dispatches for these messages: only those with data; id and retry persist. */
function expectedEvents(messages: readonly SseMessage[]): ParsedSseEvent[] {
  const events: ParsedSseEvent[] = []
  let id: string | undefined
  let retry: number | undefined
  for (const message of messages) {
    if (message.id !== undefined) id = message.id
    if (message.retry !== undefined) retry = message.retry
    if (message.data === undefined) continue
    const event: ParsedSseEvent = { event: message.event || 'message', data: message.data, id }
    if (retry !== undefined) event.retry = retry
    events.push(event)
  }
  return events
}

describe('encodeSse', () => {
  it('writes every field in order: comment, event, id, retry, data, then a blank line', () => {
    const text = encodeSse({
      data: '{"status":"die"}',
      retry: 5000,
      id: '1795923285422325136',
      event: 'container',
      comment: 'resumed',
    })
    expect(text).toBe(
      ': resumed\nevent: container\nid: 1795923285422325136\nretry: 5000\ndata: {"status":"die"}\n\n',
    )
  })

  it('writes a message with only data as the default event type', () => {
    expect(encodeSse({ data: 'hi' })).toBe('data: hi\n\n')
  })

  it('writes a comment-only message as a heartbeat', () => {
    expect(encodeSse({ comment: '' })).toBe(': \n\n')
    expect(encodeSse({ comment: 'ping' })).toBe(': ping\n\n')
  })

  it('splits a multi-line comment into comment lines', () => {
    expect(encodeSse({ comment: 'a\nb\r\nc' })).toBe(': a\n: b\n: c\n\n')
  })

  it('splits data on \\n, \\r\\n and \\r into several data lines', () => {
    expect(encodeSse({ data: 'a\nb\r\nc\rd\n' })).toBe(
      'data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n',
    )
  })

  it('writes empty data and an empty id, which resets the last event id', () => {
    expect(encodeSse({ id: '', data: '' })).toBe('id: \ndata: \n\n')
  })

  it('throws a SyntaxError on an event with a line break', () => {
    for (const event of ['a\nb', 'a\rb', 'a\r\n']) {
      expect(() => encodeSse({ event, data: 'x' })).toThrow(SyntaxError)
      expect(() => encodeSse({ event, data: 'x' })).toThrow(
        'Cannot encode server-sent event: event must not contain "\\r" or "\\n"',
      )
    }
  })

  it('throws a SyntaxError on an id with a line break or NUL', () => {
    for (const id of ['1\n2', '1\r2', '1\u00002']) {
      expect(() => encodeSse({ id, data: 'x' })).toThrow(SyntaxError)
      expect(() => encodeSse({ id, data: 'x' })).toThrow(
        'Cannot encode server-sent event: id must not contain "\\r", "\\n" or "\\0"',
      )
    }
  })

  it('throws a RangeError on a retry that is not a non-negative integer', () => {
    for (const retry of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => encodeSse({ retry })).toThrow(RangeError)
    }
    expect(encodeSse({ retry: 0 })).toBe('retry: 0\n\n')
  })
})

describe('SseParserStream', () => {
  it('dispatches a block on a blank line, with the default type and joined data lines', async () => {
    expect(await parse(['data: a\ndata: b\n\nevent: die\ndata:c\n\n'])).toEqual([
      { event: 'message', data: 'a\nb', id: undefined },
      { event: 'die', data: 'c', id: undefined },
    ])
  })

  it('strips one space after the colon, not more', async () => {
    expect(await parse(['data:  two\ndata:none\ndata\n\n'])).toEqual([
      { event: 'message', data: ' two\nnone\n', id: undefined },
    ])
  })

  it('ignores comments, unknown fields and blocks without data', async () => {
    const events = await parse([': ping\n\nfoo: bar\nevent: x\n\n:\ndata: y\nDATA: z\n\n'])
    expect(events).toEqual([{ event: 'message', data: 'y', id: undefined }])
  })

  it('keeps the last event id across events, and ignores an id with NUL', async () => {
    const events = await parse([
      'id: 1\ndata: a\n\ndata: b\n\nid: 2\u0000\ndata: c\n\nid: 3\n\nid\ndata: d\n\n',
    ])
    expect(events.map((event) => event.id)).toEqual(['1', '1', '1', ''])
  })

  it('keeps the reconnection time only from an all-digit retry', async () => {
    const events = await parse([
      'data: a\n\nretry: 1000\n\ndata: b\n\nretry: 2x\nretry: -1\nretry: \ndata: c\n\n',
    ])
    expect(events.map((event) => event.retry)).toEqual([undefined, 1000, 1000])
  })

  it('splits lines on \\r\\n, \\r and \\n, also when a \\r\\n is cut between chunks', async () => {
    const text = 'data: a\r\ndata: b\rdata: c\n\r\nid: 7\r\rdata: d\n\n'
    const expected = [
      { event: 'message', data: 'a\nb\nc', id: undefined },
      { event: 'message', data: 'd', id: '7' },
    ]
    for (let cut = 0; cut <= text.length; cut++) {
      expect(await parse([text.slice(0, cut), text.slice(cut)])).toEqual(expected)
    }
  })

  it('parses the same events however the text is cut', async () => {
    const token = fc.constantFrom('data', 'id', 'event', 'retry', ':', ' ', '\r', '\n', 'x', '7')
    await fc.assert(
      fc.asyncProperty(
        fc.array(token, { maxLength: 40 }).map((tokens) => tokens.join('')),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (text, positions) => {
          expect(await parse(cutAt(text, positions))).toEqual(await parse([text]))
        },
      ),
    )
  })

  it('skips one byte order mark at the start only', async () => {
    expect(await parse(['', '\uFEFFdata: a\n\n\uFEFFdata: b\n\n'])).toEqual([
      { event: 'message', data: 'a', id: undefined },
    ])
  })

  it('does not dispatch a block the stream ends inside', async () => {
    expect(await parse(['data: a\n\ndata: b\n', 'data: c'])).toEqual([
      { event: 'message', data: 'a', id: undefined },
    ])
  })
})

describe('encodeSse and SseParserStream', () => {
  it('round-trip event, data, id and retry, with comments ignored, however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(messageArbitrary, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (messages, positions) => {
          const bytes = encoder.encode(messages.map(encodeSse).join(''))
          expect(await parseBytes(cutAt(bytes, positions))).toEqual(expectedEvents(messages))
        },
      ),
    )
  })

  it('round-trip values that start or end with spaces or contain colons', async () => {
    const message = { event: '  spaced: ', id: ' : 1 ', data: ' a \n:b\n  ' }
    expect(await parse([encodeSse(message)])).toEqual([
      { event: '  spaced: ', data: ' a \n:b\n  ', id: ' : 1 ' },
    ])
  })

  it('deliver CR as LF, since SSE cannot carry it', async () => {
    expect(await parse([encodeSse({ data: 'a\r\nb\rc' })])).toEqual([
      { event: 'message', data: 'a\nb\nc', id: undefined },
    ])
  })
})
