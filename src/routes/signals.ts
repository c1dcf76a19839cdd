/**
 * @module The signals `kill` takes: exactly those the engine (Linux) knows, so the document
 * can list them and the engine never sees a name it refuses or a number it fails on.
 */

const NAMES = [
  'ABRT',
  'ALRM',
  'BUS',
  'CHLD',
  'CLD',
  'CONT',
  'FPE',
  'HUP',
  'ILL',
  'INT',
  'IO',
  'IOT',
  'KILL',
  'PIPE',
  'POLL',
  'PROF',
  'PWR',
  'QUIT',
  'SEGV',
  'STKFLT',
  'STOP',
  'SYS',
  'TERM',
  'TRAP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'USR1',
  'USR2',
  'VTALRM',
  'WINCH',
  'XCPU',
  'XFSZ',
  'RTMIN',
  'RTMAX',
]
/** RTMIN+1 … RTMIN+15 and RTMAX-14 … RTMAX-1: the engine's names for the realtime signals. */
const REALTIME = [
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]

/** 32 and 33 are the C library's own (the engine fails on them), and there are 64. */
const NUMBERS = Array.from({ length: 64 }, (_, i) => String(i + 1)).filter(
  (n) => n !== '32' && n !== '33',
)

const names = [...NAMES, ...REALTIME]

/** A name (`TERM`), the same with `SIG` (`SIGTERM`), or a number (`15`). */
export const SIGNALS = [...names, ...names.map((name) => `SIG${name}`), ...NUMBERS] as [
  string,
  ...string[],
]
