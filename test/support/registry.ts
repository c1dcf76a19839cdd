/**
 * The two loopback registries of scripts/registry.sh (one open, one with basic auth), and a way
 * to put an image of this run into them through the engine itself, so that parallel runs pull
 * names of their own and a pull really downloads a layer.
 */
import { execFileSync } from 'node:child_process'
import { Agent, fetch as undiciFetch } from 'undici'
import { direct, testEngineEnv } from './engine.ts'
import { TEST_LABEL, TEST_RUN } from './labels.ts'

export interface TestRegistries {
  open: string
  auth: string
  user: string
  password: string
}

/** From the environment (`scripts/registry.sh env`), or started now (`up` is idempotent). */
export function testRegistries(): TestRegistries {
  let env: Record<string, string | undefined> = process.env
  if (!env.DOCKGATE_TEST_REGISTRY) {
    const output = execFileSync('bash', ['scripts/registry.sh', 'up'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    env = Object.fromEntries(
      output
        .split('\n')
        .map((line) => /^([A-Z_]+)=(.*)$/.exec(line.trim()))
        .filter((m) => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    )
  }
  return {
    open: env.DOCKGATE_TEST_REGISTRY!,
    auth: env.DOCKGATE_TEST_REGISTRY_AUTH!,
    user: env.DOCKGATE_TEST_REGISTRY_USER!,
    password: env.DOCKGATE_TEST_REGISTRY_PASSWORD!,
  }
}

let agent: Agent | undefined

/** A call straight to the engine with headers (`X-Registry-Auth`); the body read as text. */
export async function directWithHeaders(
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
) {
  agent ??= new Agent({ connect: { socketPath: testEngineEnv().socketPath } })
  const response = await undiciFetch(`http://docker${path}`, {
    method: init.method ?? 'GET',
    dispatcher: agent,
    headers: init.headers ?? {},
  })
  return { status: response.status, text: await response.text() }
}

/** base64url WITH padding: the engine decodes with Go's padded URLEncoding, and quietly uses no credentials otherwise. */
export const registryAuth = (credentials: object) =>
  Buffer.from(JSON.stringify(credentials))
    .toString('base64')
    .replaceAll('+', '-')
    .replaceAll('/', '_')

/**
 * Commits a container of the fixture that wrote `bytes` random bytes as `<registry>/<repository>:<tag>`
 * for each registry, pushes it there, and removes it from the engine again: a pull of it then
 * downloads that layer. Answers nothing; throws when the engine says no.
 */
export async function pushUniqueImage(options: {
  registries: { host: string; auth: object }[]
  repository: string
  tag: string
  bytes: number
}): Promise<void> {
  const name = `pushsrc-${process.pid}-${Date.now().toString(36)}`
  const created = await direct(`/containers/create?name=${name}`, {
    method: 'POST',
    body: {
      Image: testEngineEnv().image,
      Cmd: ['sh', '-c', `head -c ${options.bytes} /dev/urandom > /blob`],
      Labels: { [TEST_LABEL]: TEST_RUN },
      HostConfig: { NetworkMode: 'none' },
    },
  })
  if (created.status !== 201) throw new Error(`create: ${created.text}`)
  const id = (created.json() as { Id: string }).Id
  try {
    if ((await direct(`/containers/${id}/start`, { method: 'POST' })).status !== 204)
      throw new Error('start failed')
    await direct(`/containers/${id}/wait`, { method: 'POST' })
    const [first, ...rest] = options.registries
    const firstRepo = `${first!.host}/${options.repository}`
    const commit = await direct(
      `/commit?container=${id}&repo=${encodeURIComponent(firstRepo)}&tag=${options.tag}`,
      { method: 'POST' },
    )
    if (commit.status !== 201) throw new Error(`commit: ${commit.text}`)
    for (const other of rest) {
      const tagged = await direct(
        `/images/${firstRepo}:${options.tag}/tag?repo=${encodeURIComponent(`${other.host}/${options.repository}`)}&tag=${options.tag}`,
        { method: 'POST' },
      )
      if (tagged.status !== 201) throw new Error(`tag: ${tagged.text}`)
    }
    for (const registry of options.registries) {
      const repo = `${registry.host}/${options.repository}`
      const pushed = await directWithHeaders(`/images/${repo}/push?tag=${options.tag}`, {
        method: 'POST',
        headers: { 'x-registry-auth': registryAuth(registry.auth) },
      })
      if (pushed.status !== 200 || pushed.text.includes('"error"'))
        throw new Error(`push ${repo}: ${pushed.status} ${pushed.text}`)
    }
    for (const registry of options.registries) {
      await direct(`/images/${registry.host}/${options.repository}:${options.tag}`, {
        method: 'DELETE',
      })
    }
  } finally {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
}

/** What the registry's manifest calls send: the v2 manifest type, and basic auth when it needs it. */
function manifestHeaders(basic?: { user: string; password: string }): Record<string, string> {
  const headers: Record<string, string> = {
    accept: 'application/vnd.docker.distribution.manifest.v2+json',
  }
  if (basic)
    headers.authorization = `Basic ${Buffer.from(`${basic.user}:${basic.password}`).toString('base64')}`
  return headers
}

/**
 * Deletes a tag's manifest from a registry (its storage allows deletes), so runs leave no names
 * behind; the blobs stay until scripts/registry.sh starts the registries afresh.
 */
export async function deleteFromRegistry(
  host: string,
  repository: string,
  tag: string,
  basic?: { user: string; password: string },
): Promise<void> {
  const headers = manifestHeaders(basic)
  const url = `http://${host}/v2/${repository}/manifests`
  const head = await fetch(`${url}/${tag}`, { method: 'HEAD', headers })
  const digest = head.headers.get('docker-content-digest')
  if (!head.ok || !digest) return
  await fetch(`${url}/${digest}`, { method: 'DELETE', headers })
}

/**
 * Deletes the blob of a tag's last layer (the one `pushUniqueImage` made) from a registry: its
 * manifest is still served, and a pull then fails on that layer, after it began streaming.
 */
export async function deleteLastLayerBlob(
  host: string,
  repository: string,
  tag: string,
  basic?: { user: string; password: string },
): Promise<void> {
  const headers = manifestHeaders(basic)
  const manifest = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { headers })
  if (!manifest.ok) throw new Error(`manifest: ${manifest.status}`)
  const { layers } = (await manifest.json()) as { layers: { digest: string }[] }
  const digest = layers.at(-1)?.digest
  if (!digest) throw new Error('the manifest lists no layer')
  const deleted = await fetch(`http://${host}/v2/${repository}/blobs/${digest}`, {
    method: 'DELETE',
    headers,
  })
  if (deleted.status !== 202) throw new Error(`blob delete: ${deleted.status}`)
}
