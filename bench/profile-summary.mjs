#!/usr/bin/env node
/**
 * Prints where a V8 CPU profile (`node --cpu-prof`) spent its time: the functions with the most
 * self time, and the source files with the most self time.
 *
 *   node bench/profile-summary.mjs <file.cpuprofile> [top=25] [--under=FUNCTION] [--last=SECONDS]
 *     [--window=FROM,TO] [--timeline[=MS]]
 *
 * To leave start-up and set-up out: `--under=FUNCTION` counts only the samples with a function
 * of that name on their stack (e.g. `processImmediate`); `--last=SECONDS` only those of the
 * profile's last seconds; `--window=FROM,TO` only those between two times, in seconds from the
 * profile's start. `--timeline` prints the busy (not idle) milliseconds of every 100 ms (or MS)
 * first: where the bursts of an events level are, to pick a window.
 */
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const under = args.find((a) => a.startsWith('--under='))?.slice('--under='.length)
const lastS = Number(args.find((a) => a.startsWith('--last='))?.slice('--last='.length) ?? Infinity)
const windowS = args
  .find((a) => a.startsWith('--window='))
  ?.slice('--window='.length)
  .split(',')
  .map(Number)
const timelineArg = args.find((a) => a === '--timeline' || a.startsWith('--timeline='))
const timelineMs = timelineArg ? Number(timelineArg.split('=')[1] ?? 100) : undefined
const [file, topArg] = args.filter((a) => !a.startsWith('--'))
if (!file) {
  console.error(
    'usage: node bench/profile-summary.mjs <file.cpuprofile> [top] [--under=FUNCTION] [--last=SECONDS]',
  )
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id)
const hasUnder = (id) => {
  for (let at = id; at !== undefined; at = parent.get(at)) {
    if (byId.get(at).callFrame.functionName === under) return true
  }
  return false
}
// timeDeltas[i] is the time before samples[i]
const at = []
let elapsed = 0
for (let i = 0; i < profile.samples.length; i++) {
  elapsed += profile.timeDeltas[i] ?? 0
  at.push(elapsed)
}
const from = Math.max((at.at(-1) ?? 0) - lastS * 1e6, (windowS?.[0] ?? 0) * 1e6)
const to = windowS ? windowS[1] * 1e6 : Number.POSITIVE_INFINITY
const counted = profile.samples.map(
  (id, i) => at[i] >= from && at[i] <= to && (under === undefined || hasUnder(id)),
)
if (timelineMs) printTimeline(timelineMs)

/** Busy milliseconds (samples that are not idle, in any scope) per bucket of `ms`. */
function printTimeline(ms) {
  const busy = []
  for (let i = 0; i < profile.samples.length; i++) {
    const name = byId.get(profile.samples[i]).callFrame.functionName
    if (name === '(idle)') continue
    const bucket = Math.floor(at[i] / (ms * 1000))
    busy[bucket] = (busy[bucket] ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000
  }
  console.log(`busy ms per ${ms} ms (from the profile's start):`)
  for (let b = 0; b < busy.length; b++) {
    if (busy[b] >= ms / 10)
      console.log(`  ${((b * ms) / 1000).toFixed(1).padStart(6)} s  ${busy[b].toFixed(0)}`)
  }
  console.log()
}
const selfUs = new Map()
for (let i = 0; i < profile.samples.length; i++) {
  if (!counted[i]) continue
  const id = profile.samples[i]
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
const byFunction = new Map()
const byFile = new Map()
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id)
  const where = callFrame.url
    ? `${callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${callFrame.lineNumber + 1}`
    : '(native)'
  const key = `${callFrame.functionName || '(anonymous)'}  ${where}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  const fileKey = callFrame.url
    ? callFrame.url.replace(/^file:\/\/.*?\/(node_modules\/(@[^/]+\/)?[^/]+|dist)\/.*$/, '$1')
    : callFrame.functionName || '(native)'
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us)
}
// Inclusive time: each sample counts once for every distinct function on its stack.
const keyOf = (id) => {
  const { callFrame } = byId.get(id)
  const where = callFrame.url
    ? `${callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${callFrame.lineNumber + 1}`
    : '(native)'
  return `${callFrame.functionName || '(anonymous)'}  ${where}`
}
const inclusive = new Map()
for (let i = 0; i < profile.samples.length; i++) {
  if (!counted[i]) continue
  const seen = new Set()
  for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) seen.add(keyOf(id))
  for (const key of seen)
    inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
const scope =
  (under === undefined ? '' : ` under ${under}`) +
  (Number.isFinite(lastS) ? ` in the last ${lastS} s` : '') +
  (windowS ? ` from ${windowS[0]} s to ${windowS[1]} s` : '')
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled${scope}\n\nself time by function:`)
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${pct(us)}  ${key}`)
}
console.log('\ninclusive time by function (what it and its callees took):')
for (const [key, us] of [...inclusive]
  .filter(([key]) => !/^\((root|program|idle)\)/.test(key))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)) {
  console.log(`${pct(us)}  ${key}`)
}
console.log('\nself time by package / file:')
for (const [key, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`${pct(us)}  ${key}`)
}
