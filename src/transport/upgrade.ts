/**
 * @module An upgraded (hijacked) engine call over a raw connection, for any runtime that can open
 * one: the request written as HTTP/1.1 with `Connection: Upgrade`, `Upgrade: tcp`; the engine's
 * `101 UPGRADED` head read; from then on the connection is the call's (docs/engine-notes.md#exec).
 * Neither undici's `upgrade` (no request body) nor `fetch` (no raw connection) can do it.
 */
import type { EngineConnection, UpgradeOptions } from '../engine/transport.ts'

/** A raw byte connection as each runtime gives it. */
export interface RawConnection {
  readable: ReadableStream<Uint8Array>
  writable: WritableStream<Uint8Array>
  /** Half-closes: ends what we write, reading goes on. */
  closeWrite(): Promise<void>
  /**
   * Closes both ways, without throwing when the runtime closed the connection itself: it is
   * called at the output's end, and a throw there failed the stream, whose chunks read ahead and
   * not yet taken were then lost (test/transport/deno.test.ts).
   */
  close(): void
}

/** The engine's answer head is a few hundred bytes; more without its end is not HTTP. */
export const MAX_HEAD_BYTES = 16 * 1024
const encoder = new TextEncoder()

/** The engine's answer head, and the bytes that came after it. */
export interface AnswerHead {
  status: number
  statusText: string
  responseHeaders: Headers
  rest: Uint8Array
}

/**
 * Sends `request` (path and query from its URL, its method, headers and body) over `raw` and
 * answers the connection once the engine switched protocols. Any other answer is thrown as a
 * `Response` (its body what arrived before the engine closed), and the connection closed.
 */
export async function upgradeOver(
  raw: RawConnection,
  request: Request,
  options: UpgradeOptions = {},
): Promise<EngineConnection> {
  const writer = raw.writable.getWriter()
  const reader = raw.readable.getReader()
  try {
    await writer.write(await upgradeRequestBytes(request))
    const { status, statusText, responseHeaders, rest } = await readHead(reader)
    if (status !== 101) {
      const remaining = await readAll(reader, rest, Number(responseHeaders.get('content-length')))
      throw new Response(remaining, { status, statusText, headers: responseHeaders })
    }
    return connectionAfter(raw, reader, writer, rest, options)
  } catch (error) {
    raw.close()
    throw error
  }
}

/** The request as HTTP/1.1 bytes, head and body, asking the engine to take the connection over. */
export async function upgradeRequestBytes(request: Request): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(request.url)
  const body = new Uint8Array(await request.arrayBuffer())
  const headers = new Headers(request.headers)
  headers.set('host', 'docker')
  headers.set('connection', 'Upgrade')
  headers.set('upgrade', 'tcp')
  headers.set('content-length', String(body.length))
  return requestBytes(request.method, `${url.pathname}${url.search}`, headers, body)
}

/** A request as HTTP/1.1 bytes: its request line, `headers` as given, then `body`. */
export function requestBytes(
  method: string,
  target: string,
  headers: Headers,
  body: Uint8Array,
): Uint8Array<ArrayBuffer> {
  let head = `${method} ${target} HTTP/1.1\r\n`
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`
  return concat([encoder.encode(`${head}\r\n`), body])
}

function connectionAfter(
  raw: RawConnection,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  rest: Uint8Array,
  options: UpgradeOptions,
): EngineConnection {
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    raw.close()
  }
  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (rest.length > 0) controller.enqueue(rest)
      },
      async pull(controller) {
        let read: ReadableStreamReadResult<Uint8Array>
        try {
          read = await reader.read()
        } catch (error) {
          const ours = closed
          close()
          // A read fails when this side closed the connection (the end it asked for), or when
          // the connection broke: that is no end of the output, which would then pass for whole
          // (Node's socket errors its stream the same way, src/transport/node-upgrade.ts).
          if (ours) controller.close()
          else controller.error(error)
          return
        }
        if (read.done) {
          controller.close()
          close()
        } else controller.enqueue(read.value)
      },
      cancel: close,
    },
    // Read ahead of the consumer by this many bytes (by default one chunk).
    options.readAheadBytes === undefined
      ? undefined
      : new ByteLengthQueuingStrategy({ highWaterMark: options.readAheadBytes }),
  )
  return {
    readable,
    write: (chunk) => writer.write(chunk),
    async closeWrite() {
      writer.releaseLock()
      await raw.closeWrite()
    },
    close,
  }
}

async function readHead(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<AnswerHead> {
  let buffer: Uint8Array = new Uint8Array(0)
  for (;;) {
    const head = parseAnswerHead(buffer)
    if (head) return head
    const { done, value } = await reader.read()
    if (done) throw new TypeError('The engine closed the connection before it answered')
    buffer = concat([buffer, value])
  }
}

/**
 * The answer head at the start of `buffer`, once it holds the head's end (undefined before).
 * Throws a `TypeError` when the bytes are not an HTTP answer head.
 */
export function parseAnswerHead(buffer: Uint8Array): AnswerHead | undefined {
  const end = indexOfHeadEnd(buffer)
  if (end === -1) {
    if (buffer.length > MAX_HEAD_BYTES) {
      throw new TypeError('The engine sent an overlong answer head')
    }
    return undefined
  }
  const text = new TextDecoder().decode(buffer.subarray(0, end))
  const [statusLine = '', ...lines] = text.split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine)
  if (!match) throw new TypeError('The engine did not answer in HTTP')
  const responseHeaders = new Headers()
  for (const line of lines) {
    const at = line.indexOf(':')
    if (at > 0) responseHeaders.append(line.slice(0, at).trim(), line.slice(at + 1).trim())
  }
  return {
    status: Number(match[1]),
    statusText: match[2] ?? '',
    responseHeaders,
    rest: buffer.subarray(end + 4),
  }
}

/** The rest of a refusal: its JSON message, up to the engine closing or the content length. */
async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  rest: Uint8Array,
  contentLength: number,
) {
  const parts = [rest]
  let length = rest.length
  // Refusals are short JSON with a length; bounded either way.
  const expected = Number.isFinite(contentLength) ? contentLength : MAX_HEAD_BYTES
  while (length < Math.min(expected, MAX_HEAD_BYTES)) {
    const { done, value } = await reader.read()
    if (done) break
    parts.push(value)
    length += value.length
  }
  return concat(parts)
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i
    }
  }
  return -1
}

export function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    joined.set(part, offset)
    offset += part.length
  }
  return joined
}
