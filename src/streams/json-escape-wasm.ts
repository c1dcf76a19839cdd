/**
 * @module Long texts escaped for JSON in WebAssembly, 16 bytes a step with SIMD.
 *
 * Every log line and every frame of an exec's output is escaped for JSON as bytes (byte-writer.ts).
 * In JavaScript (json-text-escape.ts) that is a scan a word at a time for the bytes that change,
 * then a copy and a move per run between them: on a 32 KiB frame of 100-byte lines, most of the
 * gateway's CPU per MB of exec output (bench phase `exec`, bench/README.md "Exec"). The module
 * (json-escape.wat, assembled into json-escape-wasm.generated.ts) does the scan, the copy and the
 * escapes in one pass over a copy of the text in its memory. WebAssembly is a web standard that
 * Node, Deno and Bun compile at run time; where it is missing or compiling is refused (workerd
 * refuses code made at run time), {@link jsonEscapeWasm} answers undefined and the JavaScript
 * escaper does it all.
 */
import { JSON_ESCAPE_WASM } from './json-escape-wasm.generated.ts'

/** The most of a text escaped in one call: the input region of the module's memory. */
export const WINDOW_BYTES = 64 * 1024
// The output region, after the input and the 16 bytes its loads read past it (the layout of
// json-escape.wat: six output bytes per input byte at most, then its tables at 0x78000)
const OUTPUT_AT = WINDOW_BYTES + 64
const CONTINUATION_MASK = 0xc0
const CONTINUATION = 0x80
// The most continuation bytes a character has
const MAX_CONTINUATION = 3

const isContinuation = (byte: number) => (byte & CONTINUATION_MASK) === CONTINUATION

/** The bytes of the sequence a lead byte begins (1 for ASCII and for bytes that begin none). */
const sequenceLength = (lead: number) =>
  lead >= 0xf0 && lead <= 0xf7
    ? 4
    : lead >= 0xe0 && lead < 0xf0
      ? 3
      : lead >= 0xc0 && lead < 0xe0
        ? 2
        : 1

/** The module's function: escapes memory[at, end) to `out`, answers where its output ends. */
type EscapeExport = (at: number, end: number, out: number) => number

/**
 * The compiled module with its memory: {@link escape} one window of a text, then read the result
 * from {@link escaped} before the next call. Synchronous, so one serves the whole process.
 */
export class JsonEscapeWasm {
  readonly #memory: Uint8Array
  readonly #escape: EscapeExport

  constructor(memory: Uint8Array, escapeExport: EscapeExport) {
    this.#memory = memory
    this.#escape = escapeExport
  }

  /**
   * Where the window of `bytes[start, end)` that starts at `start` ends: all of it when it fits,
   * else at most {@link WINDOW_BYTES}, moved back to the first byte of a character it would cut.
   * A cut at a continuation byte cuts one only when the nearest byte before it that is none, at
   * most three back, begins a sequence long enough to reach it; otherwise the byte is a stray
   * (after a whole character, or after four or more continuation bytes), decoded alone either way.
   */
  windowEnd(bytes: Uint8Array, start: number, end: number): number {
    if (end - start <= WINDOW_BYTES) return end
    const cut = start + WINDOW_BYTES
    if (!isContinuation(bytes[cut]!)) return cut
    for (let back = 1; back <= MAX_CONTINUATION; back++) {
      const lead = bytes[cut - back]!
      if (!isContinuation(lead)) return back < sequenceLength(lead) ? cut - back : cut
    }
    return cut
  }

  /**
   * Escapes `bytes[start, end)` (at most {@link WINDOW_BYTES}, ending where a character ends or
   * the text does); answers the escaped length. The result is in {@link escaped} until the next call.
   */
  escape(bytes: Uint8Array, start: number, end: number): number {
    this.#memory.set(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end))
    return this.#escape(0, end - start, OUTPUT_AT) - OUTPUT_AT
  }

  /** The last {@link escape}'s result, `length` bytes (a view of the module's memory). */
  escaped(length: number): Uint8Array {
    return this.#memory.subarray(OUTPUT_AT, OUTPUT_AT + length)
  }
}

// undefined: not tried yet; null: this runtime cannot run it
let compiledEscaper: JsonEscapeWasm | null | undefined

/**
 * The module, compiled on first use (start-up never pays for it), or undefined where WebAssembly
 * or its SIMD is not available.
 */
export function jsonEscapeWasm(): JsonEscapeWasm | undefined {
  if (compiledEscaper === undefined) compiledEscaper = compile()
  return compiledEscaper ?? undefined
}

function compile(): JsonEscapeWasm | null {
  try {
    if (typeof WebAssembly === 'undefined') return null
    const bytes = Uint8Array.from(atob(JSON_ESCAPE_WASM), (char) => char.charCodeAt(0))
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes))
    const { memory, escape: escapeExport } = instance.exports
    if (!(memory instanceof WebAssembly.Memory) || typeof escapeExport !== 'function') return null
    return new JsonEscapeWasm(new Uint8Array(memory.buffer), escapeExport as EscapeExport)
  } catch {
    // No SIMD, or code made at run time refused (workerd)
    return null
  }
}
