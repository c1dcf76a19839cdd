#!/usr/bin/env node
/**
 * Where a callgrind dump's instructions went, JavaScript functions named: a dump kept by
 * `node bench/instructions.mjs --keep=DIR --perf-map` and the `perf-PID.map` kept beside it.
 *
 * Callgrind names only what has symbols: V8's builtins (`Builtins_…`) and Node's C++. Code that V8
 * compiled at run time is an address to it; `--perf-basic-prof` makes V8 write where it put each
 * function (`start size name`), and this script gives each such address its function's name.
 * Self instructions only (the calls' inclusive costs are left out), per request when `--requests`
 * is given (instructions.mjs counts 2,000 unless told), then the same grouped by kind: JavaScript
 * by its source file, builtins by family, the rest by object file.
 *
 *   node bench/callgrind-js.mjs DUMP MAP [--requests=2000] [--top=40] [--compare=DUMP2,MAP2]
 *     [--inclusive]
 *
 * With `--compare` the second dump's figures are printed beside the first's (and the difference):
 * where one server does more than the other.
 */
import { readFileSync } from 'node:fs'
import { option } from './lib/util.mjs'

const args = process.argv.slice(2)
const [dumpFile, mapFile] = args.filter((a) => !a.startsWith('--'))
if (!dumpFile || !mapFile) {
  console.error(
    'usage: node bench/callgrind-js.mjs DUMP MAP [--requests=N] [--top=N] [--compare=DUMP2,MAP2]',
  )
  process.exit(2)
}
const requests = Number(option('requests', 2000))
const top = Number(option('top', 40))
const compare = option('compare', undefined)?.split(',')

/** The perf map's ranges, sorted by start, for a binary search. */
function readMap(file) {
  const ranges = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
    if (match) ranges.push([Number.parseInt(match[1], 16), Number.parseInt(match[2], 16), match[3]])
  }
  // A later entry for the same place (code moved or recompiled there) wins: sorted stably by
  // start, the search below takes the last range that starts at or before an address.
  ranges.sort((a, b) => a[0] - b[0])
  return ranges
}

function nameAt(ranges, address) {
  let lo = 0
  let hi = ranges.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (ranges[mid][0] <= address) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  // Several ranges may start before the address; the nearest that holds it names it.
  for (let i = found; i >= 0 && i > found - 50; i--) {
    const [start, size, name] = ranges[i]
    if (address < start + size) return name
  }
  return undefined
}

/** Self instructions by function name (`fn=`), and by object (`ob=`). */
function selfCosts(file) {
  const names = new Map()
  const self = new Map()
  const inclusive = new Map()
  let fn = ''
  let callee = ''
  let ob = ''
  let afterCall = false
  const obOf = new Map()
  const resolve = (kind, text) => {
    // Compressed names: `(id) name` the first time, `(id)` after.
    const match = /^\((\d+)\)(?: (.*))?$/.exec(text)
    if (!match) return text
    const key = `${kind}${match[1]}`
    if (match[2] !== undefined) names.set(key, match[2])
    return names.get(key) ?? text
  }
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) {
      fn = resolve('fn', line.slice(3))
      obOf.set(fn, ob)
    } else if (line.startsWith('ob=')) ob = resolve('ob', line.slice(3))
    else if (line.startsWith('cfn=')) callee = resolve('fn', line.slice(4))
    else if (line.startsWith('cob=')) resolve('ob', line.slice(4))
    else if (line.startsWith('cfi=') || line.startsWith('cfl=')) resolve('fl', line.slice(4))
    else if (line.startsWith('fl=') || line.startsWith('fi=') || line.startsWith('fe='))
      resolve('fl', line.slice(3))
    else if (line.startsWith('calls=')) afterCall = true
    else if (/^[+\-*]?\d/.test(line)) {
      const cost = Number(line.trim().split(/\s+/)[1] ?? 0)
      // A call's line is what the callee cost, inclusive; a recursive call is in the caller already.
      if (!afterCall || callee !== fn) inclusive.set(fn, (inclusive.get(fn) ?? 0) + cost)
      if (afterCall) afterCall = false
      else self.set(fn, (self.get(fn) ?? 0) + cost)
    }
  }
  return { self, inclusive, obOf }
}

/** Node's own C++ by what it is for: the compiler's and the collector's share are what vary. */
const NATIVE_KINDS = [
  ['V8 optimising compiler (TurboFan)', /v8::internal::compiler::|v8::internal::wasm::/],
  [
    'V8 baseline compiler, parser, bytecode',
    /Baseline|v8::internal::interpreter::|Parser|Scanner|v8::internal::Compiler/,
  ],
  [
    'V8 garbage collector',
    /Scavenger|MarkCompact|Heap::|heap::|IterateAndScavenge|Sweeper|Marking|Evacuat|BodyDescriptor|Concurrent/,
  ],
  ['V8 JSON', /Json/],
  ['HTTP parser (llhttp)', /llhttp|http_parser|node::\(anonymous namespace\)::Parser/],
  ['libuv', /^uv_|^uv__/],
]

/** Self instructions per request by a readable name, and by kind. */
function profile(dump, map) {
  const ranges = readMap(map)
  const { self, inclusive, obOf } = selfCosts(dump)
  const byName = new Map()
  const inclusiveByName = new Map()
  const byKind = new Map()
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v / requests)
  for (const [fn, cost] of self) {
    let name = fn
    let kind
    const address = /^0x([0-9a-f]+)$/i.exec(fn)
    if (address) {
      name = nameAt(ranges, Number.parseInt(address[1], 16)) ?? '(unnamed JIT code)'
      // `JS:*name file:line:col` (optimised), `JS:~…` (not yet), `Builtin:…`, `Stub:…`.
      const file = /^JS:[*~^+]?\S* (.*?)(?::\d+:\d+)?$/.exec(name)?.[1]
      kind = file ? `JS ${file.replace(/^.*\/dist\//, 'dist/')}` : name.split(':')[0]
    } else if (fn.startsWith('Builtins_')) kind = 'V8 builtins'
    else if (NATIVE_KINDS.some(([, pattern]) => pattern.test(fn)))
      kind = NATIVE_KINDS.find(([, pattern]) => pattern.test(fn))[0]
    else kind = (obOf.get(fn) ?? '?').split('/').at(-1)
    add(byName, name, cost)
    add(byKind, kind, cost)
    // JIT code is entered at many addresses of one function: its parts' inclusive costs would
    // add up to more than it cost, so only the largest part is kept.
    const all = (inclusive.get(fn) ?? 0) / requests
    if (all > (inclusiveByName.get(name) ?? 0)) inclusiveByName.set(name, all)
  }
  return { byName, byKind, inclusiveByName }
}

const first = profile(dumpFile, mapFile)
const second = compare ? profile(compare[0], compare[1]) : undefined
const k = (n) => (n / 1000).toFixed(2).padStart(8)

function print(title, a, b) {
  const total = (m) => [...m.values()].reduce((x, y) => x + y, 0)
  console.log(
    `\n${title} (k instructions per request; total ${k(total(a))}${b ? ` against ${k(total(b))}` : ''}):`,
  )
  const keys = new Set([...a.keys(), ...(b ? b.keys() : [])])
  const rows = [...keys].map((key) => [key, a.get(key) ?? 0, b?.get(key) ?? 0])
  rows.sort((x, y) => (b ? Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2]) : y[1] - x[1]))
  for (const [key, x, y] of rows.slice(0, top)) {
    console.log(b ? `${k(x)} ${k(y)} ${k(x - y)}  ${key}` : `${k(x)}  ${key}`)
  }
}

print('self, by function', first.byName, second?.byName)
print('self, by kind', first.byKind, second?.byKind)
if (args.includes('--inclusive')) {
  print('inclusive (callees included), by function', first.inclusiveByName, second?.inclusiveByName)
}
