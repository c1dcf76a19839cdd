/**
 * Phase 3c: an image pull through the gateway (`POST /v1/images/pull`, JSON once done) beside the
 * same pull straight from the engine (`POST /images/create`, its progress read to the end), from
 * the open loopback registry of scripts/registry.sh. The image is this run's own (the fixture and
 * a layer of random bytes, pushed once), so every pull downloads and extracts that layer; between
 * pulls it is removed again. Gateway and direct pulls (and the control, a direct pull and the
 * image's inspect) alternate, in reversed order every other rep, after one uncounted pull each way.
 */
import { median, nowMs, ratio, round } from './lib/util.mjs'

/** A run's own image in the registry: committed from a container that wrote `mb` random MB. */
export async function pushPullImage(engine, { image, runId, registry, mb }) {
  const repository = `${registry}/dockgate-bench/pull-${runId}`
  const created = await engine.json(
    'POST',
    `/containers/create?name=dockgate-bench-pull-${runId}`,
    {
      Image: image,
      Cmd: ['sh', '-c', `head -c ${mb * 1_000_000} /dev/urandom > /blob`],
      Labels: { 'dockgate-bench': runId },
      HostConfig: { NetworkMode: 'none' },
    },
  )
  try {
    await engine.json('POST', `/containers/${created.Id}/start`)
    await engine.json('POST', `/containers/${created.Id}/wait`, undefined, 120_000)
    await engine.json(
      'POST',
      `/commit?container=${created.Id}&repo=${encodeURIComponent(repository)}&tag=v1`,
    )
    // The open registry needs no credentials, but a push without the header is refused (400).
    const pushed = await engine.request(
      'POST',
      `/images/${repository}/push?tag=v1`,
      undefined,
      120_000,
      {
        'x-registry-auth': Buffer.from('{}').toString('base64'),
      },
    )
    if (pushed.status !== 200 || pushed.text.includes('"error"'))
      throw new Error(`push: ${pushed.status} ${pushed.text.slice(-300)}`)
    await removeImage(engine, `${repository}:v1`)
  } finally {
    await engine.request('DELETE', `/containers/${created.Id}?force=1`)
  }
  return `${repository}:v1`
}

/** Its manifest deleted from the registry, so runs leave no names there (blobs stay until a restart). */
async function deleteFromRegistry(ref) {
  const slash = ref.indexOf('/')
  const at = ref.lastIndexOf(':')
  const url = `http://${ref.slice(0, slash)}/v2/${ref.slice(slash + 1, at)}/manifests`
  const accept = { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
  const head = await fetch(`${url}/${ref.slice(at + 1)}`, { method: 'HEAD', headers: accept })
  const digest = head.headers.get('docker-content-digest')
  if (digest) await fetch(`${url}/${digest}`, { method: 'DELETE', headers: accept })
}

async function removeImage(engine, ref) {
  const answer = await engine.request('DELETE', `/images/${ref}`)
  if (answer.status !== 200 && answer.status !== 404)
    throw new Error(`remove ${ref}: ${answer.status} ${answer.text.slice(0, 200)}`)
}

/**
 * The pull straight from the engine; with `inspect`, followed by the image's inspect, as the
 * gateway asks for it (its answer names the image id, which the pull's records do not).
 */
async function directPull(engine, ref, inspect = false) {
  const at = ref.lastIndexOf(':')
  const query = `fromImage=${encodeURIComponent(ref.slice(0, at))}&tag=${ref.slice(at + 1)}`
  const started = nowMs()
  const answer = await engine.request('POST', `/images/create?${query}`, undefined, 300_000)
  if (answer.status !== 200 || answer.text.includes('"error"'))
    throw new Error(`direct pull: ${answer.status} ${answer.text.slice(-300)}`)
  if (inspect) await engine.json('GET', `/images/${ref}/json`)
  return nowMs() - started
}

async function gatewayPull(gateway, token, ref) {
  const started = nowMs()
  const response = await fetch(`${gateway.url}/v1/images/pull`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ref }),
  })
  const text = await response.text()
  const ms = nowMs() - started
  if (response.status !== 200) throw new Error(`gateway pull: ${response.status} ${text}`)
  return ms
}

/**
 * Medians of `reps` pulls each way, gateway over direct; every gateway variant measured. Printed
 * beside it, not judged: the median of each rep's own ratio (gateway over the direct pull of the
 * same rep, side by side in time), which a change of load during the phase moves less and the
 * spread of single pulls more. Beside
 * them, not a target, the control: the direct pull followed by the image's inspect (the engine
 * calls the gateway makes, made directly), which shows how far this engine's and registry's own
 * spread moves a ratio in this run (bench/README.md, "Image pull").
 */
export async function runPull(ctx, { ref, gateways, reps, deadline }) {
  const direct = []
  const control = []
  const through = Object.fromEntries(gateways.map((g) => [g.key, []]))
  try {
    await measure()
  } finally {
    await removeImage(ctx.engine, ref).catch(() => {})
    await deleteFromRegistry(ref).catch(() => {})
  }
  async function measure() {
    // One pull each way first, not counted: the gateway's first pull compiles its route and opens
    // the client's connection (about 100 ms more than the next ones), which no later pull pays.
    await directPull(ctx.engine, ref)
    await removeImage(ctx.engine, ref)
    for (const g of gateways) {
      await gatewayPull(g, ctx.token, ref)
      await removeImage(ctx.engine, ref)
    }
    for (let i = 0; i < reps; i++) {
      if (Date.now() > deadline) break
      const sides = ['direct', 'control', ...gateways]
      const order = i % 2 === 0 ? sides : [...sides].reverse()
      for (const side of order) {
        const ms =
          side === 'direct' || side === 'control'
            ? await directPull(ctx.engine, ref, side === 'control')
            : await gatewayPull(side, ctx.token, ref)
        if (side === 'direct') direct.push(ms)
        else if (side === 'control') control.push(ms)
        else through[side.key].push(ms)
        await removeImage(ctx.engine, ref)
      }
    }
  }
  const directMs = median(direct)
  /** Each rep's ratio to that rep's direct pull, where the rep has both. */
  const pairRatios = (runs) =>
    runs.flatMap((ms, i) => (direct[i] === undefined ? [] : [ms / direct[i]]))
  return {
    ref,
    reps: direct.length,
    directMs: round(directMs, 1),
    directRunsMs: direct.map((ms) => round(ms, 0)),
    control: {
      ms: round(median(control), 1),
      runsMs: control.map((ms) => round(ms, 0)),
      ratio: round(ratio(median(control), directMs), 3),
      pairRatio: round(median(pairRatios(control)), 3),
    },
    variants: Object.fromEntries(
      Object.entries(through).map(([key, runs]) => [
        key,
        {
          gatewayMs: round(median(runs), 1),
          runsMs: runs.map((ms) => round(ms, 0)),
          ratio: round(ratio(median(runs), directMs), 3),
          pairRatio: round(median(pairRatios(runs)), 3),
        },
      ]),
    ),
  }
}
