/**
 * PASS/MISS against the targets (each a ratio to a baseline measured in the same run), and the
 * Markdown tables of a run. With `--compare`, every verdict and gateway figure has a column per
 * variant.
 */
import { median, medianP99Level, round } from './lib/util.mjs'

const fmt = (value, digits = 1) => {
  const r = round(value, digits)
  return r === null ? '–' : r.toLocaleString('en-US', { maximumFractionDigits: digits })
}
const x = (value) => (value === null || value === undefined ? '–' : `${fmt(value, 2)}×`)
/** `+0.18 ms` or `−0.05 ms`. */
const signedMs = (ms) => `${ms < 0 ? '−' : '+'}${fmt(Math.abs(ms), 2)} ms`
const kib = (bytes) => (bytes === null || bytes === undefined ? '–' : `${fmt(bytes / 1024, 1)} KiB`)
const mib = (bytes) =>
  bytes === null || bytes === undefined ? '–' : `${fmt(bytes / 2 ** 20, 1)} MiB`

const cpuCell = (us, cores) =>
  us === null || us === undefined ? '–' : `${fmt(us, 1)} (${fmt(cores, 2)})`

function verdict(ok) {
  if (ok === null || ok === undefined) return 'N/A'
  return ok ? 'PASS' : 'MISS'
}

/**
 * A delivery latency below zero (receipt before the stamp): the clocks of the processes were
 * apart (bench/lib/util.mjs, `wallClockMs`); such a level is shown, not judged.
 */
const CLOCKS_APART = 'N/A (latency below zero: clocks apart)'
const belowZero = (...latencies) => latencies.some((ms) => typeof ms === 'number' && ms < 0)

const NOT_MEASURED = { measured: 'not measured', status: 'N/A' }

/** The variants of a run: [{ key, label }] (one unless --compare). */
const variantsOf = (results) => results.context.variants ?? [{ key: 'this', label: 'this tree' }]

/**
 * One row per target: `{ target, baseline, cells: { [variant]: { measured, status } } }`.
 * `baseline` names the same-run baseline with its absolute figure.
 */
export function evaluate(results, targets) {
  const variants = variantsOf(results)
  const rows = []
  const row = (target, baseline, cell) => {
    rows.push({
      target,
      baseline,
      cells: Object.fromEntries(variants.map((v) => [v.key, cell(v.key) ?? NOT_MEASURED])),
    })
  }
  const ratioCell = (ratio, absolute, ok) =>
    ratio === null || ratio === undefined
      ? undefined
      : { measured: `${x(ratio)} (${absolute})`, status: verdict(ok) }

  // 2. CPU
  const cpu = results.cpu && !results.cpu.error ? results.cpu : undefined
  row(
    `gateway CPU per small authenticated request ≤ ${targets.cpuToHono}× a bare Hono constant route (median of rep pairs)`,
    cpu ? `Hono on @hono/node-server: ${fmt(cpu.honoConstUs, 1)} µs` : '–',
    (key) => {
      const v = cpu?.variants?.[key]
      return (
        v &&
        ratioCell(
          v.versionToHono,
          `${fmt(v.versionUs, 1)} µs; the medians' ratio ${x(v.mediansVersionToHono)}`,
          v.versionToHono <= targets.cpuToHono,
        )
      )
    },
  )
  const store = results.storeCpu && !results.storeCpu.error ? results.storeCpu : undefined
  row(
    `gateway CPU per small authenticated request with the Redis store ≤ ${targets.redisStoreCpuToMemory ?? 1.5}× with the memory store (median of rep pairs)`,
    store ? `memory store: ${fmt(store.memory.us, 1)} µs` : '–',
    (key) =>
      key === 'this' && store
        ? ratioCell(
            store.redisToMemory,
            store.mediansRedisToMemory === undefined
              ? `${fmt(store.redis.us, 1)} µs`
              : `${fmt(store.redis.us, 1)} µs; the medians' ratio ${x(store.mediansRedisToMemory)}`,
            store.redisToMemory <= (targets.redisStoreCpuToMemory ?? 1.5),
          )
        : undefined,
  )
  const across = store?.ticketsAcross
  row(
    `a stream ticket issued on one instance and opened on another adds ≤ ${targets.ticketAcrossAddedMs ?? 1} ms at the median`,
    across ? `issued and opened on one: ${fmt(across.sameMs, 2)} ms` : '–',
    (key) =>
      key === 'this' && across
        ? {
            measured: `${fmt(across.acrossMs, 2)} ms (+${fmt(across.addedMs, 2)} ms)`,
            status: verdict(across.addedMs <= (targets.ticketAcrossAddedMs ?? 1)),
          }
        : undefined,
  )
  row(
    `gateway CPU per small authenticated request ≤ ${targets.cpuToPing}× the engine's /_ping`,
    cpu ? `dockerd /_ping: ${fmt(cpu.enginePingUs, 1)} µs` : '–',
    (key) => {
      const v = cpu?.variants?.[key]
      return (
        v &&
        ratioCell(
          v.versionToPing,
          `${fmt(v.versionUs, 1)} µs`,
          v.versionToPing <= targets.cpuToPing,
        )
      )
    },
  )
  row(
    `GET /v1/containers (20, from the read model) CPU ≤ ${targets.list20ToHono}× a bare Hono constant route (median of rep pairs)`,
    cpu ? `Hono: ${fmt(cpu.honoConstUs, 1)} µs` : '–',
    (key) => {
      const v = cpu?.variants?.[key]
      return (
        v &&
        ratioCell(
          v.list20ToHono,
          `${fmt(v.list20Us, 1)} µs; the medians' ratio ${x(v.mediansList20ToHono)}`,
          v.list20ToHono <= targets.list20ToHono,
        )
      )
    },
  )
  // 1. Throughput
  const tp = Array.isArray(results.throughput) ? results.throughput : []
  const lists = tp.filter((r) => r.case.startsWith('containers-') && r.connections === 10)
  for (const r of lists) {
    row(
      `GET /v1/containers (${r.case.slice(11)}) ≥ ${targets.containersRatioAt10}× direct throughput at 10 connections`,
      `engine /containers/json: ${fmt(r.direct.rps, 0)} req/s`,
      (key) => {
        const v = r.variants?.[key] ?? (key === 'this' ? r : undefined)
        return (
          v &&
          ratioCell(
            v.ratio.rps,
            `${fmt(v.gateway.rps, 0)} req/s`,
            v.ratio.rps >= targets.containersRatioAt10,
          )
        )
      },
    )
  }
  if (lists.length === 0) {
    row(
      `GET /v1/containers ≥ ${targets.containersRatioAt10}× direct throughput at 10 connections`,
      '–',
      () => undefined,
    )
  }
  // 3a. Logs
  for (const [name, title] of [
    ['long', '1,000-byte lines'],
    ['short', '100-byte lines'],
  ]) {
    const l = results.logs && !results.logs.error ? results.logs[name] : undefined
    row(
      `SSE log delivery ≥ ${targets.sseLogRatio}× the raw read (lines/s), ${title}`,
      l ? `raw: ${fmt(l.raw.linesPerS, 0)} lines/s` : '–',
      (key) => {
        const v = l?.variants?.[key]
        return (
          v &&
          ratioCell(v.ratio, `${fmt(v.sse.linesPerS, 0)} lines/s`, v.ratio >= targets.sseLogRatio)
        )
      },
    )
  }
  // 3d. Service logs
  const sl = results.serviceLogs && !results.serviceLogs.error && !results.serviceLogs.skipped
  row(
    `service log SSE ≥ ${targets.serviceLogRatio ?? 0.8}× the raw /services/{id}/logs read (lines/s)`,
    sl
      ? `raw: ${fmt(results.serviceLogs.raw.linesPerS, 0)} lines/s`
      : (results.serviceLogs?.skipped ?? '–'),
    (key) => {
      const v = sl ? results.serviceLogs.variants?.[key] : undefined
      return (
        v &&
        ratioCell(
          v.ratio,
          `${fmt(v.sse.linesPerS, 0)} lines/s`,
          v.ratio >= (targets.serviceLogRatio ?? 0.8),
        )
      )
    },
  )
  // 3b. Pipeline
  for (const c of Object.values(results.pipeline?.cases ?? {})) {
    row(
      `in-process demux → lines → SSE ≥ ${targets.pipelineToCopy}× a plain copy, ${c.title}`,
      `copy, ${fmt(c.chunkBytes, 0)}-byte chunks: ${fmt(c.copyMbPerS, 0)} MB/s`,
      (key) => {
        const v = c.sse?.[key]
        return (
          v && ratioCell(v.ratio, `${fmt(v.mbPerS, 0)} MB/s`, v.ratio >= targets.pipelineToCopy)
        )
      },
    )
  }
  if (!results.pipeline?.cases)
    row(
      `in-process demux → lines → SSE ≥ ${targets.pipelineToCopy}× a plain copy`,
      '–',
      () => undefined,
    )
  // 4a. Added latency
  const lat = results.latency && !results.latency.error ? results.latency : undefined
  row(
    'added event latency, one subscriber (median): gateway ≤ a Hono + undici pass-through',
    lat
      ? `pass-through: +${fmt(lat.paths.passThrough.addedP50Ms, 2)} ms (p99 +${fmt(lat.paths.passThrough.addedP99Ms, 2)})`
      : '–',
    (key) => {
      const p = lat?.paths?.[key]
      if (!p) return undefined
      const base = lat.paths.passThrough.addedP50Ms
      return {
        // The difference too: a ratio of two fractions of a millisecond swings with either.
        measured: `+${fmt(p.addedP50Ms, 2)} ms (p99 +${fmt(p.addedP99Ms, 2)}), ${x(base > 0 ? p.addedP50Ms / base : null)}, ${signedMs(p.addedP50Ms - base)} against it`,
        status: verdict(p.addedP50Ms <= base * targets.addedLatencyToPassThrough),
      }
    },
  )
  // 4e. Several engines (this tree only: one gateway with a second engine configured)
  const eng = results.engines && !results.engines.error ? results.engines : undefined
  row(
    `merged events of two engines (\`/v1/events?engine=*\`) add ≤ ${targets.mergedEventsAddedMs ?? 1} ms at the median over one engine's stream`,
    eng?.merged ? `one engine's stream (\`/v1/events\`), same events` : '–',
    (key) =>
      key === 'this' && eng?.merged && eng.merged.paired > 0
        ? {
            measured: `+${fmt(eng.merged.addedP50Ms, 3)} ms (p99 +${fmt(eng.merged.addedP99Ms, 2)}; ${eng.merged.paired} events)`,
            status: verdict(eng.merged.addedP50Ms <= (targets.mergedEventsAddedMs ?? 1)),
          }
        : undefined,
  )
  row(
    `gateway CPU per \`GET /v1/engines/{engine}/containers\` ≤ ${targets.prefixedListRatio ?? 1.05}× \`GET /v1/containers\` (list of 20, median of rep pairs)`,
    eng?.prefixed ? `\`/v1/containers\`: ${fmt(eng.prefixed.plainUs, 1)} µs` : '–',
    (key) =>
      key === 'this' && eng?.prefixed
        ? ratioCell(
            eng.prefixed.ratio,
            `${fmt(eng.prefixed.prefixedUs, 1)} µs`,
            eng.prefixed.ratio <= (targets.prefixedListRatio ?? 1.05),
          )
        : undefined,
  )
  // 4c. Fan-out
  const events = Array.isArray(results.events) ? results.events : []
  const ok = (e) => !e.skipped && !e.error
  const tops = variants.map(
    (v) =>
      events
        .filter((e) => e.target === 'gateway' && (e.variant ?? 'this') === v.key && ok(e))
        .at(-1)?.requested,
  )
  const topCount = Math.max(0, ...tops.filter(Boolean))
  // The floor and the gateway at the top count were measured in pairs (`rep`; a result without
  // reps holds one of each, which pair as well).
  const floors = events.filter((e) => e.target === 'floor' && ok(e) && e.requested === topCount)
  const floor = medianP99Level(floors)
  const partial = topCount > 0 && topCount < targets.subscribers
  const ofMore = (levels) => (levels.length > 1 ? ` (median of ${levels.length})` : '')
  row(
    `${fmt(targets.subscribers, 0)} subscribers: p99 ≤ ${targets.subscriberP99ToFloor}× a bare node:http server, one upstream (median of pair ratios)`,
    floor
      ? `node:http, ${fmt(floor.subscribed, 0)} clients: p99 ${fmt(floor.p99Ms, 1)} ms${ofMore(floors)}`
      : 'no floor at this level',
    (key) => {
      const gateways = events.filter(
        (l) =>
          l.target === 'gateway' &&
          (l.variant ?? 'this') === key &&
          ok(l) &&
          l.requested === topCount,
      )
      if (gateways.length === 0) return undefined
      const pairs = gateways
        .map((g) => ({ g, f: floors.find((f) => f.rep === g.rep) }))
        .filter(({ f }) => f !== undefined)
      // A level the time bound cut short (fewer subscribed than asked, on either side) compares
      // different loads: shown, not judged.
      const whole = pairs.filter(
        ({ g, f }) => g.subscribed === g.requested && f.subscribed === f.requested,
      )
      const ratios = whole.map(({ g, f }) => g.p99Ms / f.p99Ms)
      const r = median(ratios)
      const upstreams = gateways.map((g) => g.upstream?.engineRequestsInFlight ?? '?')
      const pass =
        r !== null && r <= targets.subscriberP99ToFloor && upstreams.every((n) => n === 1)
      let status = verdict(r === null ? null : pass)
      if (pairs.length > 0 && whole.length === 0) status = 'N/A (not all subscribed)'
      else if (whole.some(({ g, f }) => belowZero(g.p50Ms, g.p99Ms, f.p50Ms, f.p99Ms)))
        status = CLOCKS_APART
      else if (partial && r !== null) status = `${status} at ${fmt(topCount, 0)} only`
      const e = medianP99Level(gateways)
      const each = ratios.length > 1 ? `pairs ${ratios.map(x).join(', ')}; ` : ''
      return {
        measured: `${x(r)} (${each}${fmt(e.subscribed, 0)} subscribed: p99 ${fmt(e.p99Ms, 1)} ms${ofMore(gateways)}, ${[...new Set(upstreams)].join('/')} upstream; floor: ${fmt(floor?.subscribed, 0)} subscribed)`,
        status,
      }
    },
  )
  // 4d. Fan-out through the balancer (this tree only: the cluster runs this tree's bundle)
  const cl = results.cluster && !results.cluster.error ? results.cluster : undefined
  if (results.cluster) {
    const f = cl?.floor
    row(
      `through HAProxy with three instances, ${fmt(targets.subscribers, 0)} subscribers: p99 ≤ ${targets.subscriberP99ToFloor}× a bare node:http server, one upstream per instance`,
      f && !f.error
        ? `node:http, ${fmt(f.subscribed, 0)} clients: p99 ${fmt(f.p99Ms, 1)} ms`
        : 'no floor',
      (key) => {
        if (key !== 'this' || !cl?.cluster || cl.cluster.error) return undefined
        const e = cl.cluster
        const perInstance = e.upstream?.instances?.map((i) => i.engineRequestsInFlight) ?? []
        const r = f?.p99Ms ? e.p99Ms / f.p99Ms : null
        const pass =
          r !== null &&
          r <= targets.subscriberP99ToFloor &&
          perInstance.length === 3 &&
          perInstance.every((n) => n === 1)
        let status = verdict(r === null ? null : pass)
        if (e.subscribed < e.requested || f.subscribed < f.requested)
          status = 'N/A (not all subscribed)'
        else if (belowZero(e.p50Ms, e.p99Ms, f.p50Ms, f.p99Ms)) status = CLOCKS_APART
        else if (e.requested < targets.subscribers && r !== null)
          status = `${status} at ${fmt(e.requested, 0)} only`
        return {
          measured: `${x(r)} (${fmt(e.subscribed, 0)} subscribed: p99 ${fmt(e.p99Ms, 1)} ms; upstreams per instance ${perInstance.join(', ') || '?'}; ${cl.balancers} HAProxy process(es))`,
          status,
        }
      },
    )
  }
  // 3c. Image pull
  const pull = results.pull && !results.pull.error ? results.pull : undefined
  row(
    `an image pull through the gateway (JSON) ≤ ${targets.pullToDirect ?? 1.05}× the same pull from the engine`,
    pull
      ? `direct: ${fmt(pull.directMs, 0)} ms (median of ${pull.reps})`
      : results.pull?.error
        ? 'failed'
        : '–',
    (key) => {
      const v = pull?.variants?.[key]
      return (
        v &&
        ratioCell(v.ratio, `${fmt(v.gatewayMs, 0)} ms`, v.ratio <= (targets.pullToDirect ?? 1.05))
      )
    },
  )
  // 3d. Exec
  const exec = results.exec && !results.exec.error ? results.exec : undefined
  row(
    `an exec answered as JSON ≤ ${targets.execJsonToDirect ?? 1.2}× a direct exec create + start + inspect`,
    exec
      ? `direct: ${fmt(exec.json.directMs, 1)} ms (median of ${exec.json.execs})`
      : results.exec?.error
        ? 'failed'
        : '–',
    (key) => {
      const v = exec?.json.variants?.[key]
      return (
        v &&
        ratioCell(
          v.ratio,
          `${fmt(v.gatewayMs, 1)} ms`,
          v.ratio <= (targets.execJsonToDirect ?? 1.2),
        )
      )
    },
  )
  row(
    `an exec's output as SSE ≥ ${targets.execSseToRaw ?? 0.8}× the raw attach rate (${exec?.sse.mb ?? '?'} MB, median of pair ratios)`,
    exec
      ? `raw: ${fmt(exec.sse.rawMBps, 0)} MB/s (median of ${exec.sse.reps})`
      : results.exec?.error
        ? 'failed'
        : '–',
    (key) => {
      const v = exec?.sse.variants?.[key]
      return (
        v &&
        ratioCell(
          v.ratio,
          `${fmt(v.gatewayMBps, 0)} MB/s`,
          v.ratio >= (targets.execSseToRaw ?? 0.8),
        )
      )
    },
  )
  // 5. Cold start
  for (const [name, c] of Object.entries(results.coldStart ?? {})) {
    if (name === 'error') continue
    row(
      `cold start on ${name} ≤ ${targets.coldStartToBare}× the runtime's smallest HTTP server`,
      c.error ? 'failed' : `${c.bareName ?? `bare ${name} server`}: ${fmt(c.bareMs, 0)} ms`,
      (key) => {
        const v = c.variants?.[key]
        return (
          v && ratioCell(v.ratio, `${fmt(v.gatewayMs, 0)} ms`, v.ratio <= targets.coldStartToBare)
        )
      },
    )
  }
  return rows
}

function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')
}

export function renderMarkdown(results) {
  const c = results.context
  const variants = variantsOf(results)
  const compare = variants.length > 1
  const out = []
  out.push(
    `### dockgate bench, ${c.mode} run, ${c.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Node ${c.node}, ${c.cpus} cores, load average at start ${c.loadAverageAtStart.join(' / ')}; ` +
      `engine ${c.engine?.version ?? '?'} with ${c.engine?.containersOnEngine ?? '?'} containers before the bench's own; ` +
      `${results.secondsWithCleanup ?? results.seconds} s in all. Every target is a ratio to a baseline measured in the same run; medians over repetitions.` +
      (c.gatewayEntry ? ` Gateway: \`${c.gatewayEntry}\` (\`--entry\`).` : '') +
      (compare
        ? ` Compared: ${variants.map((v) => `**${v.key}** = ${v.label}`).join(', ')}, measured in turn in every phase (building ${c.compare?.ref} took ${c.compare?.buildSeconds} s more, before the clock).`
        : ''),
    '',
  )
  out.push(
    '**Targets**',
    '',
    table(
      [
        'Target',
        'Baseline (same run)',
        ...variants.flatMap((v) =>
          compare ? [`${v.key}: measured`, `${v.key}: status`] : ['Measured', 'Status'],
        ),
      ],
      results.verdicts.map((r) => [
        r.target,
        r.baseline,
        ...variants.flatMap((v) => [r.cells[v.key].measured, `**${r.cells[v.key].status}**`]),
      ]),
    ),
    '',
  )
  if (Array.isArray(results.throughput)) {
    out.push(
      '**1. Throughput and latency** (autocannon; gateway over TCP loopback, direct over the Unix socket)',
      '',
    )
    out.push(
      table(
        [
          'Case',
          'Conns',
          ...variants.map((v) => (compare ? `${v.key} req/s (ratio)` : 'Gateway req/s')),
          'Direct req/s',
          ...(compare ? [] : ['Ratio']),
          ...variants.map((v) => (compare ? `${v.key} p50 / p99 ms` : 'GW p50 / p99 ms')),
          'Direct p50 / p99 ms',
          'p99 ratio',
        ],
        results.throughput.map((r) => {
          const side = (key) => r.variants?.[key] ?? r
          return [
            r.title,
            r.connections,
            ...variants.map((v) =>
              compare
                ? `${fmt(side(v.key).gateway.rps, 0)} (${x(side(v.key).ratio.rps)})`
                : fmt(side(v.key).gateway.rps, 0),
            ),
            fmt(r.direct.rps, 0),
            ...(compare ? [] : [x(r.ratio.rps)]),
            ...variants.map(
              (v) => `${fmt(side(v.key).gateway.p50Ms, 2)} / ${fmt(side(v.key).gateway.p99Ms, 2)}`,
            ),
            `${fmt(r.direct.p50Ms, 2)} / ${fmt(r.direct.p99Ms, 2)}`,
            x(r.ratio.p99),
          ]
        }),
      ),
      '',
    )
  } else if (results.throughput?.error) {
    out.push(`**1. Throughput**: failed: ${results.throughput.error}`, '')
  }
  const cpu = results.cpu
  if (cpu && !cpu.error) {
    const rows = []
    for (const v of variants) {
      const g = cpu.variants[v.key]
      const who = compare ? ` (${v.key})` : ''
      rows.push(
        [
          `GET /v1/system/version, authenticated${who}`,
          fmt(g.versionUs, 1),
          x(g.versionToHono),
          x(g.versionToPing),
        ],
        [
          `GET /v1/containers, 20 from the read model${who}`,
          fmt(g.list20Us, 1),
          x(g.list20ToHono),
          x(cpu.enginePingUs ? g.list20Us / cpu.enginePingUs : null),
        ],
      )
      if (g.healthzUs !== null) {
        rows.push([
          `GET /healthz, no auth${who}`,
          fmt(g.healthzUs, 1),
          x(cpu.honoConstUs ? g.healthzUs / cpu.honoConstUs : null),
          x(cpu.enginePingUs ? g.healthzUs / cpu.enginePingUs : null),
        ])
      }
    }
    rows.push([
      'bare Hono, constant JSON route (@hono/node-server)',
      fmt(cpu.honoConstUs, 1),
      '1×',
      x(cpu.enginePingUs ? cpu.honoConstUs / cpu.enginePingUs : null),
    ])
    rows.push(['engine /_ping (dockerd)', fmt(cpu.enginePingUs, 1), '', '1×'])
    if (cpu.engineVersionUs !== null)
      rows.push(['engine /version (dockerd)', fmt(cpu.engineVersionUs, 1), '', ''])
    out.push(
      "**2. CPU per request** (/proc/<pid>/stat of the serving process ÷ 2xx answers, 10 connections, every row measured in turn rep by rep; µs: the median of the reps; a ratio: the median of the reps' own ratios)",
      '',
      table(['Request', 'µs CPU', '÷ Hono constant route', '÷ engine /_ping'], rows),
      '',
    )
  }
  if (results.logs && !results.logs.error) {
    for (const l of Object.values(results.logs)) {
      const note = l.truncatedReads
        ? `; ${l.truncatedReads} reads stopped early by the time bound: rates over what was read`
        : l.complete
          ? ''
          : '; the SSE line count differed from the raw one!'
      out.push(
        `**3a. Logs**: ${fmt(l.expectedLines, 0)} lines of ${l.lineBytes} bytes read to the end (${l.sse.reps} reps${note})`,
        '',
        table(
          [
            'Read',
            'MB/s',
            'lines/s',
            'ratio (lines/s)',
            'seconds',
            'dockerd CPU µs/line (cores)',
            'gateway CPU µs/line (cores)',
          ],
          [
            [
              'raw multiplexed log, Unix socket',
              fmt(l.raw.mbPerS, 1),
              fmt(l.raw.linesPerS, 0),
              '1×',
              fmt(l.raw.seconds, 2),
              cpuCell(l.raw.engineCpuUsPerLine, l.raw.engineCpuShare),
              '–',
            ],
            ...variants.map((v) => {
              const s = l.variants?.[v.key]?.sse ?? l.sse
              return [
                `SSE through the gateway${compare ? ` (${v.key})` : ''}`,
                fmt(s.mbPerS, 1),
                fmt(s.linesPerS, 0),
                x(l.variants?.[v.key]?.ratio ?? l.ratio.linesPerS),
                fmt(s.seconds, 2),
                cpuCell(s.engineCpuUsPerLine, s.engineCpuShare),
                cpuCell(s.gatewayCpuUsPerLine, s.gatewayCpuShare),
              ]
            }),
          ],
        ),
        '',
      )
    }
  } else if (results.logs?.error) {
    out.push(`**3a. Logs**: failed: ${results.logs.error}`, '')
  }
  if (results.pipeline?.cases) {
    const p = results.pipeline
    const rows = []
    for (const c of Object.values(p.cases)) {
      rows.push([`${c.title}: copy (baseline)`, fmt(c.copyMbPerS, 0), '1×'])
      for (const v of variants) {
        const s = c.sse[v.key]
        rows.push([
          `${c.title}: demux → lines → SSE${compare ? ` (${v.key})` : ''}`,
          fmt(s?.mbPerS, 0),
          x(s?.ratio),
        ])
      }
      for (const name of ['demux', 'demux+lines']) {
        const s = c.stages[name]
        if (s)
          rows.push([
            `${c.title}: ${name.replace('+', ' → ')}`,
            fmt(s.mbPerS, 0),
            x(c.copyMbPerS ? s.mbPerS / c.copyMbPerS : null),
          ])
      }
    }
    out.push(
      `**3b. In-process pipeline** (multiplexed input from memory, one frame per chunk as the engine sends log messages; ${p.totalMb} MB of 16 KB frames, a sixteenth of that in 100-byte lines; gateway modules from dist/)`,
      '',
      table(['Stages', 'MB/s', '÷ copy'], rows),
      '',
    )
  } else if (results.pipeline?.error) {
    out.push(`**3b. Pipeline**: failed: ${results.pipeline.error}`, '')
  }
  const lat = results.latency
  if (lat && !lat.error) {
    const names = { direct: 'engine /events, directly', passThrough: 'Hono + undici pass-through' }
    const gatewayName = (key) => `gateway${compare ? ` (${key})` : ''}`
    const pairedText = (byKey) =>
      Object.entries(byKey ?? {})
        .map(
          ([key, ms]) => `; ${gatewayName(key)} − pass-through, paired per event, ${signedMs(ms)}`,
        )
        .join('')
    out.push(
      `**4a. Added event latency, one subscriber** (${lat.complete} of ${lat.events} container renames, ${lat.gapMs} ms apart, received on every path${lat.arrangements ? ', in the two arrangements below' : ''}; added = a path's receipt − the direct subscriber's, per event)`,
      '',
      table(
        [
          'Path',
          'timeNano → receipt p50 / p99 ms',
          'added p50 ms',
          'added p99 ms',
          'server CPU ms per event',
        ],
        Object.entries(lat.paths).map(([key, p]) => [
          names[key] ?? `gateway /v1/events${compare ? ` (${key})` : ''}`,
          `${fmt(p.totalP50Ms, 2)} / ${fmt(p.totalP99Ms, 2)}`,
          fmt(p.addedP50Ms, 2),
          fmt(p.addedP99Ms, 2),
          p.cpuPerEventMs === null || p.cpuPerEventMs === undefined ? '—' : fmt(p.cpuPerEventMs, 2),
        ]),
      ),
      '',
      ...(lat.arrangements ?? []).map(
        (a) =>
          `- ${a.name}: ${a.complete} of ${a.events} renames, added p50 ${Object.entries(
            a.addedP50Ms,
          )
            .map(([key, ms]) => `${names[key] ?? gatewayName(key)} +${fmt(ms, 2)} ms`)
            .join(', ')}${pairedText(a.minusPassThroughP50Ms)}`,
      ),
      ...(lat.arrangements ? [''] : []),
      ...Object.entries(lat.paths)
        .filter(([, p]) => p.minusPassThroughP50Ms !== undefined)
        .map(
          ([key, p]) =>
            `Not a target: each event's receipt through the ${gatewayName(key)} minus its receipt through the pass-through (paired per event, so the direct reference drops out), median over both arrangements: ${signedMs(p.minusPassThroughP50Ms)}.`,
        ),
      ...(lat.arrangements ? [''] : []),
    )
  } else if (lat?.error) {
    out.push(`**4a. Added latency**: failed: ${lat.error}`, '')
  }
  const eng = results.engines
  if (eng && !eng.error) {
    out.push(
      `**4e. Several engines** (a second private dockerd over TLS as engine \`b\`; ${eng.merged.renamesPerEngine} renames on each engine in turn; added = the merged stream's receipt − \`/v1/events\`' receipt of the same \`default\` event)`,
      '',
      table(
        ['Measure', 'Value'],
        [
          [
            'merged events added, p50 / p99 ms',
            `${fmt(eng.merged.addedP50Ms, 3)} / ${fmt(eng.merged.addedP99Ms, 2)}`,
          ],
          ['events paired', fmt(eng.merged.paired, 0)],
          ['CPU per list of 20, `/v1/containers`', `${fmt(eng.prefixed.plainUs, 1)} µs`],
          [
            'CPU per list of 20, `/v1/engines/default/containers`',
            `${fmt(eng.prefixed.prefixedUs, 1)} µs (${x(eng.prefixed.ratio)} median of rep pairs; medians ${x(eng.prefixed.mediansRatio)}; reps ${eng.prefixed.reps.prefixed.join(', ')} against ${eng.prefixed.reps.plain.join(', ')})`,
          ],
        ],
      ),
      '',
    )
  } else if (eng?.error) {
    out.push(`**4e. Several engines**: failed: ${eng.error}`, '')
  }
  const mem = results.memory
  if (mem && !mem.error) {
    out.push(
      '**4b. Memory** (VmRSS of a fresh gateway; per stream = RSS growth ÷ streams open)',
      '',
      table(
        [
          'Gateway',
          'idle RSS',
          'event streams open',
          'per event stream',
          'log streams open',
          'per log stream',
        ],
        variants
          .filter((v) => mem[v.key])
          .map((v) => {
            const m = mem[v.key]
            return [
              v.key,
              mib(m.idleRssBytes),
              `${fmt(m.events.open, 0)} / ${fmt(m.events.requested, 0)}`,
              kib(m.events.bytesPerStream),
              `${fmt(m.logs.open, 0)} / ${fmt(m.logs.requested, 0)}`,
              kib(m.logs.bytesPerStream),
            ]
          }),
      ),
      '',
    )
  } else if (mem?.error) {
    out.push(`**4b. Memory**: failed: ${mem.error}`, '')
  }
  if (Array.isArray(results.events)) {
    out.push(
      '**4c. Events fan-out** (bursts of container renames; latency = receipt − the event’s timeNano; CPU of the gateway, or of dockerd for direct, during a burst; floor: a bare node:http server writing a burst of the same size to every client in one write each)',
      '',
      table(
        [
          'Subscribers',
          'On',
          'Subscribed',
          'p50 ms',
          'p99 ms',
          'max ms',
          'Delivered',
          'CPU µs / delivery',
          'RSS / subscriber',
          'Engine connections',
        ],
        results.events.map((e) => {
          const target = e.target === 'gateway' && compare ? `gateway (${e.variant})` : e.target
          const on = e.rep ? `${target}, pair ${e.rep}` : target
          return e.skipped || e.error
            ? [fmt(e.requested, 0), on, e.skipped ?? e.error, '', '', '', '', '', '', '']
            : [
                fmt(e.requested, 0),
                on,
                `${fmt(e.subscribed, 0)} in ${fmt(e.connectSeconds, 1)} s`,
                fmt(e.p50Ms, 1),
                fmt(e.p99Ms, 1),
                fmt(e.maxMs, 1),
                `${fmt(e.deliveries, 0)} / ${fmt(e.expectedDeliveries, 0)}`,
                fmt(e.cpuUsPerDelivery, 1),
                kib(e.bytesPerSubscriber),
                e.upstream
                  ? `${e.upstream.engineRequestsInFlight} in flight (${e.upstream.unixSockets} sockets)`
                  : e.target === 'direct'
                    ? fmt(e.subscribed, 0)
                    : '–',
              ]
        }),
      ),
      '',
    )
  }
  if (results.cluster?.error) {
    out.push(`**4d. Events fan-out through the balancer**: failed: ${results.cluster.error}`, '')
  } else if (results.cluster) {
    const { floor, cluster, floorBehindBalancer, balancers } = results.cluster
    out.push(
      `**4d. Events fan-out through the balancer** (the same subscribers and bursts as 4c, on HAProxy in front of three gateway instances, scripts/cluster.sh, ${balancers} HAProxy process(es) on one port; CPU and RSS: the three instances together; floor: 4c's at this count, or one measured here. Not a target: the floor behind the same HAProxy, which shows HAProxy's own share. CPU by part: the client is the bench process reading every subscriber's socket)`,
      '',
      table(
        [
          'Subscribers',
          'On',
          'Subscribed',
          'p50 ms',
          'p99 ms',
          'max ms',
          'Delivered',
          'CPU µs / delivery',
          'RSS / subscriber',
          'Per instance: streams, engine requests in flight',
          'CPU µs / delivery by part',
        ],
        [floor, cluster, floorBehindBalancer].filter(Boolean).map((e) =>
          !e || e.error || e.skipped
            ? [
                '',
                e?.target ?? '',
                e?.error ?? e?.skipped ?? 'not measured',
                '',
                '',
                '',
                '',
                '',
                '',
                '',
                '',
              ]
            : [
                fmt(e.requested, 0),
                e.target,
                `${fmt(e.subscribed, 0)} in ${fmt(e.connectSeconds, 1)} s`,
                fmt(e.p50Ms, 1),
                fmt(e.p99Ms, 1),
                fmt(e.maxMs, 1),
                `${fmt(e.deliveries, 0)} / ${fmt(e.expectedDeliveries, 0)}`,
                fmt(e.cpuUsPerDelivery, 1),
                kib(e.bytesPerSubscriber),
                e.upstream?.instances
                  ? e.upstream.instances
                      .map((i) => `${fmt(i.openStreams, 0)}, ${i.engineRequestsInFlight}`)
                      .join('; ')
                  : '–',
                Object.entries(e.cpuPartsUsPerDelivery ?? {})
                  .filter(([name]) => !name.endsWith('(sys)'))
                  .map(([name, us]) => `${name} ${fmt(us, 1)}`)
                  .join(', ') || '–',
              ],
        ),
      ),
      '',
    )
  }
  if (results.pull && !results.pull.error) {
    const p = results.pull
    out.push(
      `**3c. Image pull** (\`${p.ref}\` from the open loopback registry, a fresh layer each time; gateway and direct pulls alternate)`,
      '',
      table(
        [
          'Gateway',
          'Gateway ms',
          'Direct ms',
          'Ratio',
          'Median of the reps’ own ratios',
          'Gateway runs ms',
          'Direct runs ms',
        ],
        Object.entries(p.variants).map(([key, v]) => [
          key,
          fmt(v.gatewayMs, 0),
          fmt(p.directMs, 0),
          x(v.ratio),
          x(v.pairRatio),
          v.runsMs.join(', '),
          p.directRunsMs.join(', '),
        ]),
      ),
      '',
    )
    if (p.control) {
      out.push(
        `Not a target, the control: the direct pull followed by the image's inspect (the engine calls the gateway makes, made directly) ${fmt(p.control.ms, 0)} ms, ${x(p.control.ratio)} the direct pull (runs ${p.control.runsMs.join(', ')}): how far this engine's and registry's spread moves a ratio in this run.`,
        '',
      )
    }
  }
  if (results.exec && !results.exec.error) {
    const e = results.exec
    out.push(
      `**3d. Exec** (JSON: an exec of \`true\`, ${e.json.execs} each way, alternating; SSE: \`cat\` of a ${e.sse.mb} MB file in the container, rate from the first output byte to the last, pairs in alternating order after one uncounted rep each way)`,
      '',
      table(
        [
          'Gateway',
          'JSON ms',
          'Direct ms',
          'Ratio',
          'SSE MB/s',
          'Raw MB/s',
          'Ratio (pairs)',
          'Pair ratios',
          'Whole-call ratio',
          'Gateway CPU ms/MB',
        ],
        Object.keys(e.json.variants).map((key) => {
          const j = e.json.variants[key]
          const v = e.sse.variants[key] ?? {}
          return [
            key,
            fmt(j.gatewayMs, 1),
            fmt(e.json.directMs, 1),
            x(j.ratio),
            fmt(v.gatewayMBps, 1),
            fmt(e.sse.rawMBps, 1),
            x(v.ratio),
            (v.pairRatios ?? []).join(', '),
            x(v.wholeRatio),
            fmt(v.cpuMsPerMb, 2),
          ]
        }),
      ),
      '',
    )
    const pass = e.sse.passThrough
    if (pass) {
      const each = (field) =>
        Object.entries(e.sse.variants)
          .map(([key, v]) => `${key} ${x(v[field])}`)
          .join(', ')
      out.push(
        `Not a target: the pass-through floor (bench/lib/exec-pass-through.mjs: the raw output through a bare node:http process) ${fmt(pass.MBps, 1)} MB/s, ${x(pass.ratio)} the raw rate (pairs ${pass.pairRatios.join(', ')}); SSE against it, pair by pair: ${each('toPassThrough')}. SSE to the last output byte (without the exec's inspect that \`end\` waits for): ${each('outputRatio')}.`,
        '',
      )
    }
  }
  if (results.coldStart && !results.coldStart.error) {
    out.push(
      '**5. Cold start** (spawn → first 200; baseline: the smallest HTTP server of the same runtime; starts in turn)',
      '',
      table(
        ['Runtime', 'Gateway', 'ms', 'Bare server ms', 'Ratio', 'Gateway runs ms', 'Bare runs ms'],
        Object.entries(results.coldStart).flatMap(([name, r]) =>
          r.error
            ? [[name, '', 'failed', '', '', r.error.slice(0, 80), '']]
            : variants.map((v) => {
                const g = r.variants?.[v.key] ?? {
                  gatewayMs: r.gatewayMs,
                  ratio: r.ratio,
                  runsMs: r.gatewayRunsMs,
                }
                return [
                  name,
                  v.key,
                  fmt(g.gatewayMs, 0),
                  fmt(r.bareMs, 0),
                  x(g.ratio),
                  g.runsMs.join(', '),
                  r.bareRunsMs.join(', '),
                ]
              }),
        ),
      ),
      '',
      ...Object.entries(results.coldStart)
        .filter(([, r]) => r.alsoBare)
        .map(
          ([name, r]) =>
            `Not a target: on ${name}, ${r.alsoBare.name}: ${fmt(r.alsoBare.ms, 1)} ms (${r.alsoBare.runsMs.join(', ')}); the gateway ${x(r.alsoBare.ratio)} it.\n`,
        ),
    )
  }
  if (results.errors?.length) out.push(`Errors: ${results.errors.join('; ')}`, '')
  return `${out.join('\n')}\n`
}
