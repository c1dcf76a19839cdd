/**
 * PASS/MISS against the targets, and the Markdown tables of a run.
 */
import { round } from './lib/util.mjs'

const fmt = (value, digits = 1) => {
  const r = round(value, digits)
  return r === null ? '–' : r.toLocaleString('en-US', { maximumFractionDigits: digits })
}
const x = (value) => (value === null || value === undefined ? '–' : `${fmt(value, 2)}×`)

const cpuCell = (us, cores) =>
  us === null || us === undefined ? '–' : `${fmt(us, 1)} (${fmt(cores, 2)})`

function verdict(ok) {
  if (ok === null || ok === undefined) return 'N/A'
  return ok ? 'PASS' : 'MISS'
}

export function evaluate(results, targets) {
  const v = []
  const cpu = results.cpu?.gatewayUsPerRequest ?? null
  v.push({
    target: `gateway CPU ≤ ${targets.cpuUsPerRequest} µs per small authenticated request`,
    measured: cpu === null ? 'not measured' : `${fmt(cpu, 1)} µs`,
    status: verdict(cpu === null ? null : cpu <= targets.cpuUsPerRequest),
  })
  const tp = Array.isArray(results.throughput) ? results.throughput : []
  for (const row of tp.filter((r) => r.case.startsWith('containers-') && r.connections === 10)) {
    v.push({
      target: `GET /v1/containers (${row.case.slice(11)}) ≥ ${targets.containersRatioAt10}× direct throughput at 10 connections`,
      measured: `${x(row.ratio.rps)} (${fmt(row.gateway.rps, 0)} vs ${fmt(row.direct.rps, 0)} req/s)`,
      status: verdict(row.ratio.rps === null ? null : row.ratio.rps >= targets.containersRatioAt10),
    })
  }
  if (!tp.some((r) => r.case.startsWith('containers-') && r.connections === 10)) {
    v.push({
      target: `GET /v1/containers ≥ ${targets.containersRatioAt10}× direct throughput at 10 connections`,
      measured: 'not measured',
      status: 'N/A',
    })
  }
  const logRatio = results.logs?.ratio?.linesPerS ?? null
  v.push({
    target: `SSE log delivery ≥ ${targets.sseLogRatio}× the raw read rate (lines/s)`,
    measured:
      logRatio === null
        ? 'not measured'
        : `${x(logRatio)} (${fmt(results.logs.sse.linesPerS, 0)} vs ${fmt(results.logs.raw.linesPerS, 0)} lines/s)`,
    status: verdict(logRatio === null ? null : logRatio >= targets.sseLogRatio),
  })
  const pipe = results.pipeline?.stages?.['demux+lines+sse']?.mbPerS ?? null
  v.push({
    target: `in-process demux → lines → SSE ≥ ${fmt(targets.pipelineMbPerS / 1000, 1)} GB/s on 16 KB frames`,
    measured: pipe === null ? 'not measured' : `${fmt(pipe, 0)} MB/s`,
    status: verdict(pipe === null ? null : pipe >= targets.pipelineMbPerS),
  })
  const levels = Array.isArray(results.events)
    ? results.events.filter((e) => e.target === 'gateway' && !e.skipped && !e.error)
    : []
  const top = levels.at(-1)
  if (top) {
    const upstream = top.upstream?.engineRequestsInFlight ?? null
    const reached = top.subscribed >= targets.subscribers
    const ok = top.p99Ms !== null && top.p99Ms <= targets.subscriberP99Ms && upstream === 1
    const floor = results.events.find(
      (e) => e.target === 'floor' && e.requested === top.requested && !e.skipped && !e.error,
    )
    const floorNote = floor
      ? ` (a bare node:http server, same run: p99 ${fmt(floor.p99Ms, 1)} ms)`
      : ''
    v.push({
      target: `${fmt(targets.subscribers, 0)} subscribers, p99 ≤ ${targets.subscriberP99Ms} ms, one upstream connection`,
      measured: `${fmt(top.subscribed, 0)} subscribed: p99 ${fmt(top.p99Ms, 1)} ms, ${upstream ?? '?'} upstream${floorNote}`,
      status: reached ? verdict(ok) : `${ok ? 'PASS' : 'MISS'} at ${fmt(top.subscribed, 0)} only`,
    })
  } else {
    v.push({
      target: `${fmt(targets.subscribers, 0)} subscribers, p99 ≤ ${targets.subscriberP99Ms} ms, one upstream connection`,
      measured: 'not measured',
      status: 'N/A',
    })
  }
  const cold = results.coldStart?.node?.gatewayMs ?? null
  v.push({
    target: `cold start ≤ ${targets.coldStartNodeMs} ms on Node`,
    measured: cold === null ? 'not measured' : `${fmt(cold, 0)} ms`,
    status: verdict(cold === null ? null : cold <= targets.coldStartNodeMs),
  })
  return v
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
  const out = []
  out.push(
    `### dockgate bench, ${c.mode} run, ${c.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Node ${c.node}, ${c.cpus} cores, load average at start ${c.loadAverageAtStart.join(' / ')}; ` +
      `engine ${c.engine?.version ?? '?'} with ${c.engine?.containersOnEngine ?? '?'} containers before the bench's own; ` +
      `${results.secondsWithCleanup ?? results.seconds} s in all. Ratios are gateway ÷ direct socket, same run; medians over repetitions.` +
      (c.gatewayEntry ? ` Gateway: \`${c.gatewayEntry}\` (\`--entry\`).` : ''),
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
          'Gateway req/s',
          'Direct req/s',
          'Ratio',
          'GW p50 / p99 ms',
          'Direct p50 / p99 ms',
          'p99 ratio',
        ],
        results.throughput.map((r) => [
          r.title,
          r.connections,
          fmt(r.gateway.rps, 0),
          fmt(r.direct.rps, 0),
          x(r.ratio.rps),
          `${fmt(r.gateway.p50Ms, 2)} / ${fmt(r.gateway.p99Ms, 2)}`,
          `${fmt(r.direct.p50Ms, 2)} / ${fmt(r.direct.p99Ms, 2)}`,
          x(r.ratio.p99),
        ]),
      ),
      '',
    )
  } else if (results.throughput?.error) {
    out.push(`**1. Throughput**: failed: ${results.throughput.error}`, '')
  }
  if (results.cpu && !results.cpu.error) {
    const rows = [
      [
        'GET /v1/system/version (auth) vs engine /version',
        fmt(results.cpu.gatewayUsPerRequest, 1),
        fmt(results.cpu.engineUsPerDirectRequest, 1),
        x(results.cpu.ratio),
      ],
    ]
    if (results.cpu.healthzUsPerRequest !== undefined) {
      rows.push([
        'GET /healthz (no auth) vs engine /_ping',
        fmt(results.cpu.healthzUsPerRequest, 1),
        fmt(results.cpu.enginePingUsPerRequest, 1),
        x(
          results.cpu.enginePingUsPerRequest
            ? results.cpu.healthzUsPerRequest / results.cpu.enginePingUsPerRequest
            : null,
        ),
      ])
    }
    out.push(
      '**2. CPU per request** (from /proc/<pid>/stat of the gateway and of dockerd, 10 connections)',
      '',
      table(['Request', 'Gateway µs CPU', 'dockerd µs CPU (direct)', 'Ratio'], rows),
      '',
    )
  }
  if (results.logs && !results.logs.error) {
    const l = results.logs
    out.push(
      `**3a. Logs**: ${fmt(l.expectedLines, 0)} lines of ${l.lineBytes} bytes read to the end (${l.sse.reps} reps${l.truncatedReads ? `; ${l.truncatedReads} reads stopped early by the time bound: rates over what was read` : l.complete ? '' : '; the SSE line count differed from the raw one!'})`,
      '',
      table(
        [
          'Read',
          'MB/s',
          'lines/s',
          'seconds',
          'dockerd CPU µs/line (cores)',
          'gateway CPU µs/line (cores)',
        ],
        [
          [
            'raw multiplexed log, Unix socket',
            fmt(l.raw.mbPerS, 1),
            fmt(l.raw.linesPerS, 0),
            fmt(l.raw.seconds, 2),
            cpuCell(l.raw.engineCpuUsPerLine, l.raw.engineCpuShare),
            '–',
          ],
          [
            'SSE through the gateway',
            fmt(l.sse.mbPerS, 1),
            fmt(l.sse.linesPerS, 0),
            fmt(l.sse.seconds, 2),
            cpuCell(l.sse.engineCpuUsPerLine, l.sse.engineCpuShare),
            cpuCell(l.sse.gatewayCpuUsPerLine, l.sse.gatewayCpuShare),
          ],
          ['ratio', x(l.ratio.bytesPerS), x(l.ratio.linesPerS), '–', '', ''],
        ],
      ),
      '',
    )
  } else if (results.logs?.error) {
    out.push(`**3a. Logs**: failed: ${results.logs.error}`, '')
  }
  if (results.pipeline && !results.pipeline.error) {
    const p = results.pipeline
    out.push(
      `**3b. In-process pipeline** (${p.totalMb} MB of ${p.frameBytes}-byte frames in ${p.chunkBytes / 1024} KiB chunks, gateway modules from dist/)`,
      '',
      table(
        ['Stages', 'MB/s'],
        Object.entries(p.stages).map(([name, s]) => [
          name.replaceAll('+', ' → '),
          fmt(s.mbPerS, 0),
        ]),
      ),
      '',
    )
  }
  if (Array.isArray(results.events)) {
    out.push(
      '**4. Events fan-out** (bursts of container renames; latency = receipt − the event’s timeNano; CPU of the gateway, or of dockerd for direct, during a burst; floor: a bare node:http server writing a burst of the same size to every client in one write each)',
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
        results.events.map((e) =>
          e.skipped || e.error
            ? [fmt(e.requested, 0), e.target, e.skipped ?? e.error, '', '', '', '', '', '', '']
            : [
                fmt(e.requested, 0),
                e.target,
                `${fmt(e.subscribed, 0)} in ${fmt(e.connectSeconds, 1)} s`,
                fmt(e.p50Ms, 1),
                fmt(e.p99Ms, 1),
                fmt(e.maxMs, 1),
                `${fmt(e.deliveries, 0)} / ${fmt(e.expectedDeliveries, 0)}`,
                fmt(e.cpuUsPerDelivery, 1),
                e.bytesPerSubscriber === null ? '–' : `${fmt(e.bytesPerSubscriber / 1024, 1)} KiB`,
                e.upstream
                  ? `${e.upstream.engineRequestsInFlight} in flight (${e.upstream.unixSockets} sockets)`
                  : e.target === 'direct'
                    ? fmt(e.subscribed, 0)
                    : '–',
              ],
        ),
      ),
      '',
    )
  }
  if (results.coldStart && !results.coldStart.error) {
    out.push(
      '**5. Cold start** (spawn → first 200; baseline: the smallest HTTP server of the same runtime)',
      '',
      table(
        ['Runtime', 'Gateway ms', 'Bare server ms', 'Ratio', 'Gateway runs ms'],
        Object.entries(results.coldStart).map(([name, r]) =>
          r.error
            ? [name, 'failed', '', '', r.error.slice(0, 80)]
            : [name, fmt(r.gatewayMs, 0), fmt(r.bareMs, 0), x(r.ratio), r.gatewayRunsMs.join(', ')],
        ),
      ),
      '',
    )
  }
  out.push(
    '**Targets**',
    '',
    table(
      ['Target', 'Measured', 'Status'],
      results.verdicts.map((v) => [v.target, v.measured, `**${v.status}**`]),
    ),
    '',
  )
  if (results.errors?.length) out.push(`Errors: ${results.errors.join('; ')}`, '')
  return `${out.join('\n')}\n`
}
