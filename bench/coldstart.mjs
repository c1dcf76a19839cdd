/**
 * 5. Cold start: from spawn to the first 200 on /healthz, the gateway on Node, Deno, Bun and
 * workerd, each against the smallest HTTP server its runtime can run (the same-run baseline; on
 * workerd a minimal worker). One unmeasured start of each warms the file cache and Deno's
 * transpile cache first.
 */
import { dirname } from 'node:path'
import {
  startBareBun,
  startBareBunExecutable,
  startBareDeno,
  startBareNode,
  startBareWorkerd,
  startBunGateway,
  startDenoGateway,
  startNodeGateway,
  startWorkerdGateway,
  stopProcess,
} from './lib/processes.mjs'
import { log, median, round } from './lib/util.mjs'

/**
 * The runtimes measured, each with its smallest HTTP server (the baseline, `bareName` in the
 * report) and the gateway of a variant (`{ root, entry }`: this tree, or a `--compare` checkout)
 * on it; the target (≤ 4× the bare server) applies to each alike. Bun runs the gateway's
 * executable (scripts/build-bun.mjs); beside its baseline (`bun -e`, the server as the runtime
 * runs a script, as on Node and Deno) the same server, compiled as the gateway is, is timed too
 * (`alsoBare`, not a target: what compiling alone saves). workerd runs the edge bundle
 * (`dist/edge.js`) against the engine's TCP port (`ctx.tcpHost`), as test/runtimes does.
 */
export function runtimes(ctx, timeoutMs) {
  const gatewayOptions = (variant) => ({
    dockerHost: ctx.dockerHost,
    tcpHost: ctx.tcpHost,
    token: ctx.token,
    configPath: ctx.configPath,
    entry: variant.entry,
    root: variant.root,
    timeoutMs: timeoutMs(),
  })
  return [
    {
      name: 'node',
      gateway: (variant) => startNodeGateway(gatewayOptions(variant)),
      bare: () => startBareNode(timeoutMs()),
    },
    {
      name: 'deno',
      gateway: (variant) => startDenoGateway(gatewayOptions(variant)),
      bare: () => startBareDeno(timeoutMs()),
    },
    {
      name: 'bun',
      // The variant's own Bun entry, found in its tree: its `entry` is its Node bundle.
      gateway: (variant) => startBunGateway({ ...gatewayOptions(variant), entry: undefined }),
      bare: () => startBareBun(timeoutMs()),
      alsoBare: {
        name: 'the bare Bun server compiled as the gateway is',
        start: () => startBareBunExecutable(dirname(ctx.configPath), timeoutMs()),
      },
    },
    {
      name: 'workerd',
      bareName: 'a minimal worker',
      // The edge bundle: the variant's dist/edge.js, not its Node entry.
      gateway: (variant) => startWorkerdGateway({ ...gatewayOptions(variant), entry: undefined }),
      bare: () => startBareWorkerd(dirname(ctx.configPath), timeoutMs()),
    },
  ]
}

async function timeStart(start) {
  const server = await start()
  await stopProcess(server.child)
  return server.readyMs
}

/**
 * One unmeasured start of everything first (file cache, Deno's transpile cache), then `reps`
 * rounds; in each, every runtime's gateway of each variant and its bare server start in turn, so
 * that a time bound cuts every runtime alike. `variants`: [{ key, root, entry }].
 */
export async function runColdStart(ctx, { reps, deadline, variants }) {
  // A start that takes longer than what is left is a failure, not a reason to overrun.
  const timeoutMs = () => Math.max(3_000, deadline - Date.now())
  const plans = runtimes(ctx, timeoutMs).map((runtime) => ({
    runtime,
    starts: [
      ...variants.map((v) => ({ key: v.key, start: () => runtime.gateway(v) })),
      { key: 'bare', start: runtime.bare },
      ...(runtime.alsoBare ? [{ key: 'alsoBare', start: runtime.alsoBare.start }] : []),
    ],
    times: Object.fromEntries([
      ...variants.map((v) => [v.key, []]),
      ['bare', []],
      ['alsoBare', []],
    ]),
    error: undefined,
  }))
  const attempt = async (plan, fn) => {
    try {
      await fn()
    } catch (error) {
      plan.error = String(error.message ?? error).slice(0, 500)
      log(`  cold start ${plan.runtime.name}: failed: ${plan.error}`)
    }
  }
  for (const plan of plans) {
    await attempt(plan, async () => {
      for (const s of plan.starts) await timeStart(s.start)
    })
  }
  for (let i = 0; i < reps && Date.now() < deadline; i++) {
    for (const plan of plans.filter((p) => !p.error)) {
      await attempt(plan, async () => {
        for (const s of plan.starts) plan.times[s.key].push(await timeStart(s.start))
      })
    }
  }
  const result = {}
  for (const { runtime, times, error } of plans) {
    if (error) {
      result[runtime.name] = { error }
      continue
    }
    if (times.bare.length === 0) {
      log(`  cold start ${runtime.name}: skipped (time budget)`)
      continue
    }
    const bareMs = median(times.bare)
    const byVariant = Object.fromEntries(
      variants.map((v) => {
        const ms = median(times[v.key])
        return [
          v.key,
          {
            gatewayMs: ms,
            ratio: bareMs && ms ? ms / bareMs : null,
            runsMs: times[v.key].map((t) => round(t, 1)),
          },
        ]
      }),
    )
    const first = byVariant[variants[0].key]
    const alsoBareMs = times.alsoBare.length > 0 ? median(times.alsoBare) : undefined
    result[runtime.name] = {
      bareName: runtime.bareName ?? `bare ${runtime.name} server`,
      gatewayMs: first.gatewayMs,
      bareMs,
      ratio: first.ratio,
      gatewayRunsMs: first.runsMs,
      bareRunsMs: times.bare.map((t) => round(t, 1)),
      variants: byVariant,
      ...(alsoBareMs && runtime.alsoBare
        ? {
            alsoBare: {
              name: runtime.alsoBare.name,
              ms: alsoBareMs,
              runsMs: times.alsoBare.map((t) => round(t, 1)),
              ratio: first.gatewayMs ? first.gatewayMs / alsoBareMs : null,
            },
          }
        : {}),
    }
    log(
      `  cold start ${runtime.name}: ` +
        variants
          .map(
            (v) =>
              `gateway ${v.key} ${round(byVariant[v.key].gatewayMs, 0)} ms (${byVariant[v.key].runsMs.join(', ')})`,
          )
          .join('; ') +
        `; bare server ${round(bareMs, 0)} ms (${result[runtime.name].bareRunsMs.join(', ')})` +
        (alsoBareMs ? `; compiled bare server ${round(alsoBareMs, 1)} ms` : ''),
    )
  }
  return result
}
