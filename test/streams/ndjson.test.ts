import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  extractIntegerField,
  NdjsonDecoder,
  type NdjsonRecord,
  NdjsonStream,
  type NdjsonStreamOptions,
} from '../../src/streams/ndjson.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()
const MiB = 1024 * 1024
const KiB = 1024

// A `die` event as dockerd 20.10.24 writes it (docs/engine-notes.md#event-stream)
const DIE_EVENT =
  '{"status":"die","id":"b6b3c0ffee","from":"busybox:local","Type":"container","Action":"die",' +
  '"Actor":{"ID":"b6b3c0ffee","Attributes":{"exitCode":"0","image":"busybox:local","name":"rs-logs","research":"1"}},' +
  '"scope":"local","time":1795923285,"timeNano":1795923285422325136}'

/**
 * The records of the stream, and checks that the synchronous decoder (the event hub's) gives the
 * same records, or fails with the same error.
 */
async function decode(
  chunks: readonly (string | Uint8Array)[],
  options?: NdjsonStreamOptions,
): Promise<NdjsonRecord[]> {
  const bytes = chunks.map((chunk) => (typeof chunk === 'string' ? encoder.encode(chunk) : chunk))
  const synchronous = decodeSynchronously(bytes, options)
  const streamed = await collect(readableOf(bytes).pipeThrough(new NdjsonStream(options))).then(
    (records) => ({ records }),
    (error: unknown) => ({ error }),
  )
  if ('error' in streamed) {
    expect(synchronous.error).toEqual(streamed.error)
    throw streamed.error
  }
  expect(synchronous).toEqual(streamed)
  return streamed.records
}

function decodeSynchronously(chunks: readonly Uint8Array[], options?: NdjsonStreamOptions) {
  const decoder = new NdjsonDecoder(options)
  const records: NdjsonRecord[] = []
  const emit = (record: NdjsonRecord) => records.push(record)
  try {
    for (const chunk of chunks) decoder.push(chunk, emit)
    decoder.finish(emit)
    return { records }
  } catch (error) {
    return { error, records }
  }
}

/** Cuts bytes at the given positions (any order, duplicates allowed, modulo the length). */
function cutAt(bytes: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(positions.map((position) => position % (bytes.length + 1)))]
  cuts.sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let start = 0
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(start, cut))
    start = cut
  }
  return chunks
}

describe('NdjsonStream', () => {
  it('emits each line parsed, with its source text', async () => {
    const records = await decode(['{"a":1}\n[2,"x"]\n"s"\n'])
    expect(records).toEqual([
      { value: { a: 1 }, raw: '{"a":1}' },
      { value: [2, 'x'], raw: '[2,"x"]' },
      { value: 's', raw: '"s"' },
    ])
  })

  it('gives back the same values and lines however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue({ stringUnit: 'binary' }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (values, positions) => {
          const lines = values.map((value) => JSON.stringify(value))
          const bytes = encoder.encode(lines.map((line) => `${line}\n`).join(''))
          const records = await decode(cutAt(bytes, positions))
          expect(records.map((record) => record.raw)).toEqual(lines)
          // Against JSON.parse rather than `values`: JSON turns -0 into 0
          expect(records.map((record) => record.value)).toEqual(
            lines.map((line) => JSON.parse(line)),
          )
        },
      ),
    )
  })

  it('decodes characters split at every byte position', async () => {
    const text = '{"name":"é€😀"}\n{"b":"ü"}\n'
    const bytes = encoder.encode(text)
    for (let cut = 0; cut <= bytes.length; cut++) {
      const records = await decode([bytes.subarray(0, cut), bytes.subarray(cut)])
      expect(records).toEqual([
        { value: { name: 'é€😀' }, raw: '{"name":"é€😀"}' },
        { value: { b: 'ü' }, raw: '{"b":"ü"}' },
      ])
    }
  })

  it('decodes a stream fed one byte at a time', async () => {
    const bytes = encoder.encode(`${DIE_EVENT}\n{"ü":"😀"}\r\n`)
    const records = await decode(
      cutAt(
        bytes,
        Array.from(bytes, (_, index) => index),
      ),
    )
    expect(records.map((record) => record.raw)).toEqual([DIE_EVENT, '{"ü":"😀"}'])
  })

  it('skips empty lines and drops a carriage return before the newline', async () => {
    const records = await decode(['\n{"a":1}\r\n\r\n\n{"b":', '2}\r', '\n\n'])
    expect(records).toEqual([
      { value: { a: 1 }, raw: '{"a":1}' },
      { value: { b: 2 }, raw: '{"b":2}' },
    ])
  })

  it('parses a last line that has no newline', async () => {
    const records = await decode(['{"a":1}\n{"b"', ':2}'])
    expect(records.map((record) => record.value)).toEqual([{ a: 1 }, { b: 2 }])
  })

  it('ends without records on an empty stream', async () => {
    expect(await decode([])).toEqual([])
    expect(await decode([new Uint8Array(0), '\n\r\n'])).toEqual([])
  })

  it('skips a byte order mark at the start of the stream', async () => {
    const records = await decode([new Uint8Array([0xef, 0xbb]), new Uint8Array([0xbf]), '{}\n'])
    expect(records).toEqual([{ value: {}, raw: '{}' }])
  })

  it('skips it in a first line whole in its chunk, and keeps it as text in a later one', async () => {
    expect(await decode(['\uFEFF{}\n{"a":1}\n'])).toEqual([
      { value: {}, raw: '{}' },
      { value: { a: 1 }, raw: '{"a":1}' },
    ])
    await expect(decode(['{}\n\uFEFF{}\n'])).rejects.toThrow(SyntaxError)
    await expect(decode(['{}\n', '\uFEFF{}\n'])).rejects.toThrow(SyntaxError)
  })

  it('decodes an invalid byte in a line whole in its chunk as U+FFFD', async () => {
    const line = new Uint8Array([...encoder.encode('{"a":"'), 0xff, ...encoder.encode('"}\n')])
    const records = await decode(['{}\n', line])
    expect(records[1]).toEqual({ value: { a: '\uFFFD' }, raw: '{"a":"\uFFFD"}' })
  })

  it('errors with a SyntaxError on a line that is not JSON, after the lines before it', async () => {
    const readable = readableOf([encoder.encode('{"a":1}\n{"a":\n{"b":2}\n')]).pipeThrough(
      new NdjsonStream(),
    )
    const reader = readable.getReader()
    expect(await reader.read()).toEqual({ done: false, value: { value: { a: 1 }, raw: '{"a":1}' } })
    const error = await reader.read().then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(SyntaxError)
    expect((error as Error).message).toBe(
      'Cannot decode NDJSON line: line 2 is not JSON: "{\\"a\\":"',
    )
  })

  it('NdjsonDecoder hands over the lines before a bad one in the same chunk, then throws', () => {
    const result = decodeSynchronously([encoder.encode('{"a":1}\n{"a":\n{"b":2}\n')])
    expect(result.records).toEqual([{ value: { a: 1 }, raw: '{"a":1}' }])
    expect(result.error).toBeInstanceOf(SyntaxError)
    expect((result.error as Error).message).toBe(
      'Cannot decode NDJSON line: line 2 is not JSON: "{\\"a\\":"',
    )
  })

  it('shows at most the first 100 characters of a bad line in the error', async () => {
    const line = `not json ${'x'.repeat(10_000)}`
    const result = decode([`${line}\n`])
    await expect(result).rejects.toThrow(SyntaxError)
    const message = await result.catch((error: Error) => error.message)
    expect(message).toBe(
      `Cannot decode NDJSON line: line 1 is not JSON: ${JSON.stringify(line.slice(0, 100))}…`,
    )
  })

  it('errors on a bad last line without newline', async () => {
    await expect(decode(['{"a":1}\n{"a"'])).rejects.toThrow(
      'Cannot decode NDJSON line: line 2 is not JSON: "{\\"a\\""',
    )
  })

  it('errors on an over-long line as soon as it exceeds the limit, before its end arrives', async () => {
    const stream = new NdjsonStream({ maxLineBytes: MiB })
    // A pending read lifts the backpressure of the empty readable side, so writes go through
    const read = stream.readable.getReader().read()
    const writer = stream.writable.getWriter()
    const chunk = encoder.encode('x'.repeat(64 * KiB))
    const chunkCount = (2 * MiB) / chunk.length
    let written = 0
    let error: unknown
    for (; written < chunkCount; written++) {
      try {
        await writer.write(chunk)
      } catch (reason) {
        error = reason
        break
      }
    }
    // 16 chunks are exactly 1 MiB, which is allowed; the 17th is one too many
    expect(written).toBe(16)
    expect(error).toBeInstanceOf(RangeError)
    expect((error as Error).message).toBe('Cannot decode NDJSON: a line exceeds 1048576 bytes')
    await expect(read).rejects.toBe(error)
  })

  it('NdjsonDecoder throws on an over-long line with the chunk that exceeds the limit', () => {
    const decoder = new NdjsonDecoder({ maxLineBytes: MiB })
    const chunk = encoder.encode('x'.repeat(64 * KiB))
    const emit = () => {}
    for (let written = 0; written < 16; written++) decoder.push(chunk, emit)
    expect(() => decoder.push(chunk, emit)).toThrow(
      'Cannot decode NDJSON: a line exceeds 1048576 bytes',
    )
  })

  it('errors on an over-long line piped in 64 KiB chunks before the source is drained', async () => {
    const chunk = encoder.encode('x'.repeat(64 * KiB))
    let pulled = 0
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        if (pulled === 32) controller.enqueue(encoder.encode('"\n'))
        else if (pulled > 32) controller.close()
        else controller.enqueue(chunk)
      },
    })
    const result = collect(source.pipeThrough(new NdjsonStream()))
    await expect(result).rejects.toThrow('Cannot decode NDJSON: a line exceeds 1048576 bytes')
    // 17 chunks reach the limit; the pipe reads at most one more ahead
    expect(pulled).toBeLessThan(20)
  })

  it('errors on an over-long line that arrives whole in one chunk', async () => {
    await expect(
      decode(['{"a":1}\n', `"${'x'.repeat(10)}"\n`], { maxLineBytes: 11 }),
    ).rejects.toThrow(RangeError)
  })

  it('counts bytes, not characters, and not the line terminator', async () => {
    // 'é' is two bytes: 2 quotes + 4 × 2 = 10 bytes
    const line = '"éééé"'
    await expect(decode([`${line}\r\n`], { maxLineBytes: 10 })).resolves.toEqual([
      { value: 'éééé', raw: line },
    ])
    await expect(decode([`${line}\r`, '\n'], { maxLineBytes: 10 })).resolves.toHaveLength(1)
    await expect(decode([`${line}\n`], { maxLineBytes: 9 })).rejects.toThrow(
      'Cannot decode NDJSON: a line exceeds 9 bytes',
    )
    await expect(decode([`${line}x\r`], { maxLineBytes: 10 })).rejects.toThrow(RangeError)
  })

  it('names itself and the limit when it refuses one', () => {
    expect(() => new NdjsonStream({ maxLineBytes: 1.5 })).toThrow(
      'Cannot create NdjsonStream: maxLineBytes must be an integer >= 4: current value is 1.5',
    )
  })

  it('keeps timeNano digits that JSON.parse rounds', async () => {
    const [record] = await decode([`${DIE_EVENT}\n`])
    const { value, raw } = record!
    expect((value as { timeNano: number }).timeNano).toBe(1795923285422325200)
    expect(extractIntegerField(raw, 'timeNano')).toBe('1795923285422325136')
  })
})

describe('extractIntegerField', () => {
  it('extracts the exact timeNano digits of a Docker event line', () => {
    expect(extractIntegerField(DIE_EVENT, 'timeNano')).toBe('1795923285422325136')
    expect(extractIntegerField(DIE_EVENT, 'time')).toBe('1795923285')
  })

  it('allows whitespace around the colon and a minus sign', () => {
    expect(extractIntegerField('{ "timeNano" :\t-1795923285422325136 }', 'timeNano')).toBe(
      '-1795923285422325136',
    )
  })

  it('ignores a nested field and a field named inside a string', () => {
    const raw =
      '{"Actor":{"timeNano":1,"Attributes":{"label":"\\"timeNano\\":2","x":"{\\"timeNano\\":3}"}},' +
      '"note":"timeNano","timeNano":4}'
    expect(extractIntegerField(raw, 'timeNano')).toBe('4')
    expect(extractIntegerField('[{"timeNano":1}]', 'timeNano')).toBeUndefined()
  })

  it('ignores a string value that equals the key', () => {
    expect(extractIntegerField('{"a":"timeNano","b":1}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"a":["timeNano",1]}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"a":"timeNano", "timeNano":7}', 'timeNano')).toBe('7')
  })

  it('returns undefined when the field is missing or not an integer', () => {
    expect(extractIntegerField('{"time":1}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"timeNano":"1795923285422325136"}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"timeNano":1.5}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"timeNano":1e3}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"timeNano":null}', 'timeNano')).toBeUndefined()
    expect(extractIntegerField('{"timeNano', 'timeNano')).toBeUndefined()
  })

  it('finds any top-level integer exactly, whatever else the object holds', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        fc.string(),
        (others, integer, field) => {
          const { [field]: _, ...rest } = others
          const raw = `{${[
            ...Object.entries(rest).map(
              ([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`,
            ),
            `${JSON.stringify(field)}:${integer}`,
          ].join(',')}}`
          expect(extractIntegerField(raw, field)).toBe(String(integer))
        },
      ),
    )
  })
})
