/**
 * @module Counters, gauges and histograms in the Prometheus text format (version 0.0.4).
 *
 * Small on purpose: labels are few and bounded (route patterns, status codes, reason codes).
 */

type Labels = Record<string, string>

const key = (labels: Labels) =>
  Object.entries(labels)
    .map(
      ([k, v]) =>
        `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`,
    )
    .join(',')

class Counter {
  readonly values = new Map<string, number>()
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1) {
    const k = key(labels)
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }
  render(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`)
  }
}

class Histogram {
  readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {}
  observe(labels: Labels, value: number) {
    const k = key(labels)
    let s = this.series.get(k)
    if (!s) {
      s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }
      this.series.set(k, s)
    }
    this.bounds.forEach((bound, i) => {
      if (value <= bound) s.buckets[i]! += 1
    })
    s.sum += value
    s.count += 1
  }
  render(): string[] {
    const lines: string[] = []
    for (const [k, s] of this.series) {
      const sep = k ? ',' : ''
      this.bounds.forEach((bound, i) => {
        lines.push(`${this.name}_bucket{${k}${sep}le="${bound}"} ${s.buckets[i]}`)
      })
      lines.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`)
      lines.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`)
      lines.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`)
    }
    return lines
  }
}

export class Metrics {
  readonly requests = new Counter(
    'dockgate_http_requests_total',
    'HTTP requests by route, method and status',
  )
  readonly latency = new Histogram(
    'dockgate_http_request_duration_seconds',
    'Time to the response headers, by route',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  )
  readonly denials = new Counter('dockgate_denials_total', 'Requests denied, by reason code')
  openStreams = 0
  engineConnections = 0
  /** Read when rendered: the events hub's ring size and upstream state. */
  events: () => { ringSize: number; upstreamConnected: boolean } = () => ({
    ringSize: 0,
    upstreamConnected: false,
  })

  render(): string {
    const events = this.events()
    const gauge = (name: string, help: string, value: number) => [
      `# HELP ${name} ${help}`,
      `# TYPE ${name} gauge`,
      `${name} ${value}`,
    ]
    const typed = (m: Counter | Histogram, type: string) => [
      `# HELP ${m.name} ${m.help}`,
      `# TYPE ${m.name} ${type}`,
      ...m.render(),
    ]
    return `${[
      ...typed(this.requests, 'counter'),
      ...typed(this.latency, 'histogram'),
      ...typed(this.denials, 'counter'),
      ...gauge('dockgate_open_streams', 'Event streams open to clients', this.openStreams),
      ...gauge(
        'dockgate_engine_connections',
        'Engine requests in flight (streams included)',
        this.engineConnections,
      ),
      ...gauge(
        'dockgate_events_upstream_connected',
        'Whether the shared /events stream is connected',
        events.upstreamConnected ? 1 : 0,
      ),
      ...gauge('dockgate_events_ring_size', 'Engine events held for replay', events.ringSize),
    ].join('\n')}\n`
  }
}
