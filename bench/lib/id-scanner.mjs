/**
 * Finds event ids in a subscriber's bytes as they arrive, without turning them into text: the
 * bench's one client process reads 10,000 sockets, and the cost of its reads is in every
 * fan-out figure (a string and a regular expression per read was about half of it).
 *
 * An id is `marker` followed by decimal digits (a `timeNano`, or the floor's stamp in the same
 * unit); `lineStart`: the marker counts only at the start of a line (`id: ` in event-stream
 * text). Its value is answered in milliseconds since the epoch with µs precision, as
 * `Number(BigInt(digits) / 1000n) / 1000` would. A marker or number split across reads is
 * carried over to the next.
 */
const DIGIT_0 = 0x30
const NEWLINE = 0x0a

export class IdScanner {
  #marker
  #lineStart
  /** Bytes of a possibly incomplete id at the end of the last read (copied: reads reuse buffers). */
  #carry = null
  #afterNewline = true

  constructor(marker, { lineStart = false } = {}) {
    this.#marker = Buffer.from(marker, 'latin1')
    this.#lineStart = lineStart
  }

  /** Calls `found(ms)` for each complete id in `bytes` (after what was carried). */
  scan(bytes, found) {
    let buf = bytes
    let afterNewline = this.#afterNewline
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, bytes])
      this.#carry = null
    }
    const marker = this.#marker
    const end = buf.length
    let pos = 0
    for (;;) {
      const at = buf.indexOf(marker, pos)
      if (at < 0) break
      if (this.#lineStart && !(at === 0 ? afterNewline : buf[at - 1] === NEWLINE)) {
        pos = at + 1
        continue
      }
      let i = at + marker.length
      let micros = 0
      let digits = 0
      const start = i
      for (; i < end; i++) {
        const d = buf[i] - DIGIT_0
        if (d < 0 || d > 9) break
        digits++
        if (digits <= 16) micros = micros * 10 + d
      }
      if (i === end) {
        // The number (or what follows it) may go on in the next read.
        this.#carry = Buffer.from(buf.subarray(at))
        this.#afterNewline = at === 0 ? afterNewline : buf[at - 1] === NEWLINE
        return
      }
      if (digits > 0) found(toMs(buf, start, digits, micros))
      pos = i
    }
    // A marker cut short at the end: keep the bytes that may be its start.
    for (let k = Math.min(marker.length - 1, end - pos); k > 0; k--) {
      if (buf.subarray(end - k).equals(marker.subarray(0, k))) {
        this.#carry = Buffer.from(buf.subarray(end - k))
        this.#afterNewline = end - k === 0 ? afterNewline : buf[end - k - 1] === NEWLINE
        return
      }
    }
    afterNewline = end === 0 ? afterNewline : buf[end - 1] === NEWLINE
    this.#afterNewline = afterNewline
  }
}

/**
 * The id in ms with µs precision: its digits without the last three, ÷ 1000. For 19 digits of
 * nanoseconds (every id today) those are the first 16: exact in a double.
 */
function toMs(buf, start, digits, first16) {
  if (digits === 19) return first16 / 1000
  // Any other length (not sent today): exactly as the text would be read.
  const text = buf.toString('latin1', start, start + digits)
  return Number(BigInt(text) / 1000n) / 1000
}
