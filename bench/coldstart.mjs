/**
 * 5. Cold start: from spawn to the first 200 on /healthz, the gateway on Node and on Deno,
 * each against the smallest HTTP server its runtime can run (the same-run baseline). One
 * unmeasured start of each warms the file cache and Deno's transpile cache first.
 */
import {
  startBareDeno,
  startBareNode,
  startDenoGateway,
  startNodeGateway,
  stopProcess,
} from './lib/processes.mjs'
import { log, median, round } from './lib/util.mjs'

async function measure(start, reps, deadline) {
  const times = []
  // warm-up
  const warm = await start()
  await stopProcess(warm.child)
  for (let i = 0; i < reps && Date.now() < deadline; i++) {
    const server = await start()
    times.push(server.readyMs)
    await stopProcess(server.child)
  }
  return { medianMs: median(times), runsMs: times.map((t) => round(t, 1)) }
}

export async function runColdStart(ctx, { reps, deadline, deno }) {
  // A start that takes longer than what is left is a failure, not a reason to overrun.
  const timeoutMs = () => Math.max(3_000, deadline - Date.now())
  const gatewayOptions = () => ({
    dockerHost: ctx.dockerHost,
    token: ctx.token,
    configPath: ctx.configPath,
    entry: ctx.entry,
    timeoutMs: timeoutMs(),
  })
  const result = {}
  const runtimes = [
    ['node', () => startNodeGateway(gatewayOptions()), () => startBareNode(timeoutMs())],
    ...(deno
      ? [['deno', () => startDenoGateway(gatewayOptions()), () => startBareDeno(timeoutMs())]]
      : []),
  ]
  for (const [name, gateway, bare] of runtimes) {
    if (Date.now() > deadline) {
      log(`  cold start ${name}: skipped (time budget)`)
      continue
    }
    try {
      const g = await measure(gateway, reps, deadline)
      const b = await measure(bare, reps, deadline)
      result[name] = {
        gatewayMs: g.medianMs,
        bareMs: b.medianMs,
        ratio: b.medianMs ? g.medianMs / b.medianMs : null,
        gatewayRunsMs: g.runsMs,
        bareRunsMs: b.runsMs,
      }
      log(
        `  cold start ${name}: gateway ${round(g.medianMs, 0)} ms (${g.runsMs.join(', ')}), bare server ${round(b.medianMs, 0)} ms`,
      )
    } catch (error) {
      result[name] = { error: String(error.message ?? error).slice(0, 500) }
      log(`  cold start ${name}: failed: ${result[name].error}`)
    }
  }
  return result
}
