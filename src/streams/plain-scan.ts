/**
 * @module Skipping long runs of bytes that JSON leaves as they are, 64 at a time, with
 * WebAssembly SIMD.
 *
 * The JSON escaping of json-text-escape.ts scans every byte of a log line for the few that
 * change (`"`, `\`, C0 controls, bytes >= 0x80). In JavaScript that scan goes a 32-bit word at
 * a time and costs more than the rest of the log pipeline together on long lines (bench phase
 * `pipeline`, 16 KB frames: 4.9–6.6 µs per 16 KiB, best of 15 × 2000 here, against 1.0–1.5 µs
 * for a copy into the module's memory plus this scan; bench/README.md, "The 16 KB pipeline").
 * WebAssembly is a web standard that Node, Deno and Bun compile at run time; where it is missing
 * or compiling is refused (workerd refuses code made at run time), {@link plainScanner} answers
 * undefined and the word scan does it all.
 */

/** How many bytes of the input the scanner's memory holds at once: its one 64 KiB page. */
export const WINDOW_BYTES = 64 * 1024

/**
 * The module, as bytes. Its one function in the text format (`scan(at, end)`: the offset of the
 * first byte in memory[at, end) that is `"`, `\`, below 0x20 or above 0x7F, tested 16 at a time,
 * else where the last whole block of 16 ends; a signed `lt 0x20` catches the high bytes too):
 *
 * ```wat
 * (module
 *   (memory (export "memory") 1)
 *   (func (export "scan") (param $at i32) (param $end i32) (result i32)
 *     (local $v v128) (local $below v128) (local $quote v128) (local $backslash v128)
 *     (local $mask i32)
 *     (local.set $below (i8x16.splat (i32.const 0x20)))
 *     (local.set $quote (i8x16.splat (i32.const 0x22)))
 *     (local.set $backslash (i8x16.splat (i32.const 0x5c)))
 *     ;; 64 bytes a step while none of them changes
 *     (block $wide (loop $step
 *       (br_if $wide (i32.gt_u (i32.add (local.get $at) (i32.const 64)) (local.get $end)))
 *       (br_if $wide (v128.any_true (v128.or (v128.or (v128.or
 *         (SPECIAL offset=0) (SPECIAL offset=16)) (SPECIAL offset=32)) (SPECIAL offset=48))))
 *       (local.set $at (i32.add (local.get $at) (i32.const 64)))
 *       (br $step)))
 *     ;; then 16 bytes a step, to the first one that changes
 *     (block $narrow (loop $step
 *       (br_if $narrow (i32.gt_u (i32.add (local.get $at) (i32.const 16)) (local.get $end)))
 *       (if (local.tee $mask (i8x16.bitmask (SPECIAL offset=0)))
 *         (then (return (i32.add (local.get $at) (i32.ctz (local.get $mask))))))
 *       (local.set $at (i32.add (local.get $at) (i32.const 16)))
 *       (br $step)))
 *     (local.get $at)))
 * ```
 *
 * where `(SPECIAL offset=N)` is `(v128.or (v128.or (i8x16.lt_s (local.tee $v (v128.load
 * offset=N (local.get $at))) (local.get $below)) (i8x16.eq (local.get $v) (local.get $quote)))
 * (i8x16.eq (local.get $v) (local.get $backslash)))`.
 */
const special = (offset: number) => [
  ...[0x20, 0x00, 0xfd, 0x00, 0x00, offset, 0x22, 0x02], // local.tee $v (v128.load offset (local.get $at))
  ...[0x20, 0x03, 0xfd, 0x25], // i8x16.lt_s $v $below
  ...[0x20, 0x02, 0x20, 0x04, 0xfd, 0x23, 0xfd, 0x50], // v128.or (i8x16.eq $v $quote)
  ...[0x20, 0x02, 0x20, 0x05, 0xfd, 0x23, 0xfd, 0x50], // v128.or (i8x16.eq $v $backslash)
]
const V128_OR = [0xfd, 0x50]
const CODE = [
  ...[0x02, 0x04, 0x7b, 0x01, 0x7f], // locals: 4 × v128, 1 × i32
  ...[0x41, 0x20, 0xfd, 0x0f, 0x21, 0x03], // $below
  ...[0x41, 0x22, 0xfd, 0x0f, 0x21, 0x04], // $quote
  ...[0x41, 0xdc, 0x00, 0xfd, 0x0f, 0x21, 0x05], // $backslash
  ...[0x02, 0x40, 0x03, 0x40], // block $wide, loop
  ...[0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x20, 0x01, 0x4b, 0x0d, 0x01], // at + 64 > end: out
  ...special(0),
  ...special(16),
  ...V128_OR,
  ...special(32),
  ...V128_OR,
  ...special(48),
  ...V128_OR,
  ...[0xfd, 0x53, 0x0d, 0x01], // v128.any_true: out
  ...[0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x00, 0x0c, 0x00], // at += 64, again
  ...[0x0b, 0x0b],
  ...[0x02, 0x40, 0x03, 0x40], // block $narrow, loop
  ...[0x20, 0x00, 0x41, 0x10, 0x6a, 0x20, 0x01, 0x4b, 0x0d, 0x01], // at + 16 > end: out
  ...special(0),
  ...[0xfd, 0x64, 0x22, 0x06], // local.tee $mask (i8x16.bitmask)
  ...[0x04, 0x40, 0x20, 0x00, 0x20, 0x06, 0x68, 0x6a, 0x0f, 0x0b], // if: return at + ctz(mask)
  ...[0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, 0x0c, 0x00], // at += 16, again
  ...[0x0b, 0x0b],
  ...[0x20, 0x00, 0x0b], // at
]
const MODULE = Uint8Array.from([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // \0asm, version 1
  ...[0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f], // type: (i32, i32) -> i32
  ...[0x03, 0x02, 0x01, 0x00], // function 0 of that type
  ...[0x05, 0x03, 0x01, 0x00, 0x01], // memory: 1 page
  // exports: "memory", "scan"
  ...[0x07, 0x11, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00],
  ...[0x04, 0x73, 0x63, 0x61, 0x6e, 0x00, 0x00],
  ...[0x0a, ...leb128(CODE.length + 1 + leb128(CODE.length).length), 0x01],
  ...leb128(CODE.length),
  ...CODE,
])

function leb128(value: number): number[] {
  const bytes: number[] = []
  let rest = value
  do {
    const low = rest & 0x7f
    rest >>>= 7
    bytes.push(rest === 0 ? low : low | 0x80)
  } while (rest !== 0)
  return bytes
}

/**
 * Finds where runs of bytes that JSON leaves as they are end, in a copy of the input held in
 * the module's memory. The copy is a window of up to {@link WINDOW_BYTES}, kept while the
 * scans of one text stay inside it ({@link forget} between texts).
 */
export class PlainScanner {
  readonly #memory: Uint8Array
  readonly #scan: (at: number, end: number) => number
  // The window: bytes[#from, #to) of #source is in memory[0, #to - #from)
  #source: Uint8Array | undefined
  #from = 0
  #to = 0

  constructor(memory: Uint8Array, scan: (at: number, end: number) => number) {
    this.#memory = memory
    this.#scan = scan
  }

  /**
   * Where the run of plain bytes from `at` ends in `bytes[at, end)`: the first byte that is not
   * plain (see `isPlain` in json-text-escape.ts), or a place from which fewer than 16 bytes of
   * the window were left unscanned. Always past `at` when the 16 bytes at `at` are plain.
   */
  plainEnd(bytes: Uint8Array, at: number, end: number): number {
    if (this.#source !== bytes || at < this.#from || at + 16 > this.#to) {
      const to = Math.min(end, at + WINDOW_BYTES)
      this.#memory.set(bytes.subarray(at, to))
      this.#source = bytes
      this.#from = at
      this.#to = to
    }
    return this.#from + this.#scan(at - this.#from, this.#to - this.#from)
  }

  /** Drops the window: the next text may be other bytes in the same array. */
  forget(): void {
    this.#source = undefined
  }
}

// undefined: not tried yet; null: this runtime cannot run it
let compiledScanner: PlainScanner | null | undefined

/**
 * The scanner, compiled on first use (start-up never pays for it), or undefined where
 * WebAssembly or its SIMD is not available. One for the process: scans are synchronous.
 */
export function plainScanner(): PlainScanner | undefined {
  if (compiledScanner === undefined) compiledScanner = compile()
  return compiledScanner ?? undefined
}

function compile(): PlainScanner | null {
  try {
    if (typeof WebAssembly === 'undefined') return null
    const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE))
    const { memory, scan } = instance.exports
    if (!(memory instanceof WebAssembly.Memory) || typeof scan !== 'function') return null
    return new PlainScanner(
      new Uint8Array(memory.buffer),
      scan as (at: number, end: number) => number,
    )
  } catch {
    // No SIMD, or code made at run time refused (workerd)
    return null
  }
}
