/**
 * @module Counters, gauges and histograms in the Prometheus text format (version 0.0.4).
 *
 * Small on purpose: labels are few and bounded (route patterns, status codes, reason codes).
 */

type Labels = Record<string, string>

/** The series key of a label set: `k="v",…` with Prometheus escapes. */
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
    this.incSeries(key(labels), by)
  }
  /** `inc` for a series key built once by the caller (see `Metrics.observeRequest`). */
  incSeries(k: string, by = 1) {
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }
  render(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`)
  }
}

class Histogram {
  /** Per series: each bucket's own count (not cumulative), the sum and the count. */
  readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {}
  /** Counts `value` in the series with key `k` (built once by the caller). */
  observeSeries(k: string, value: number) {
    let s = this.series.get(k)
    if (!s) {
      s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }
      this.series.set(k, s)
    }
    // Each value is counted once, in the first bucket that holds it (none past the last bound),
    // and the cumulative counts Prometheus reads are summed when rendered: a fast request holds
    // every bound, and adding it to all twelve cost more than finding its one (bench/README.md,
    // "Per-request CPU (issue 17, branch smallreq2)").
    let i = 0
    while (i < this.bounds.length && !(value <= this.bounds[i]!)) i++
    if (i < this.bounds.length) s.buckets[i]! += 1
    s.sum += value
    s.count += 1
  }
  render(): string[] {
    const lines: string[] = []
    for (const [k, s] of this.series) {
      const sep = k ? ',' : ''
      let cumulative = 0
      this.bounds.forEach((bound, i) => {
        cumulative += s.buckets[i]!
        lines.push(`${this.name}_bucket{${k}${sep}le="${bound}"} ${cumulative}`)
      })
      lines.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`)
      lines.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`)
      lines.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`)
    }
    return lines
  }
}

/** The series keys of one route, method and status. */
interface RequestSeries {
  count: string
  latency: string
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
  /**
   * The series keys of each route, method and status seen: building them (entries, escapes,
   * joins) for every request cost more than counting. Bounded like the series themselves:
   * route patterns, the methods Node's parser accepts, status codes.
   */
  readonly #requestSeries = new Map<string, Map<string, Map<number, RequestSeries>>>()
  openStreams = 0
  engineConnections = 0
  /** Read when rendered: the events hub's ring (held, capacity), upstream state and subscribers. */
  events: () => {
    ringSize: number
    ringCapacity: number
    upstreamConnected: boolean
    subscribers: number
  } = () => ({
    ringSize: 0,
    ringCapacity: 0,
    upstreamConnected: false,
    subscribers: 0,
  })

  /** Counts one answered request and its time to the response headers. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    // Looked up by route, method and status in turn, not by one string made of them: the route
    // pattern and the method are the same strings every time (their hashes kept), and a status
    // is a small integer, where a joined key was a new string to build and hash per request
    // (~2k instructions of the small request under callgrind; bench/README.md, "Per-request
    // CPU, the shared chain (issue 17, branch `smallreq3`)").
    let byMethod = this.#requestSeries.get(route)
    if (!byMethod) {
      byMethod = new Map()
      this.#requestSeries.set(route, byMethod)
    }
    let byStatus = byMethod.get(method)
    if (!byStatus) {
      byStatus = new Map()
      byMethod.set(method, byStatus)
    }
    let series = byStatus.get(status)
    if (!series) {
      series = { count: key({ route, method, status: String(status) }), latency: key({ route }) }
      byStatus.set(status, series)
    }
    this.requests.incSeries(series.count)
    this.latency.observeSeries(series.latency, seconds)
  }

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
      ...gauge(
        'dockgate_events_ring_capacity',
        'Most engine events held for replay (events.ringSize in the config file)',
        events.ringCapacity,
      ),
      ...gauge(
        'dockgate_events_subscribers',
        'Subscriptions to the events hub (event streams and the read model)',
        events.subscribers,
      ),
    ].join('\n')}\n`
  }
}
