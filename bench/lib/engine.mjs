/**
 * A direct line to the engine over its Unix socket (node:http): setup, cleanup and the
 * "direct" side of every comparison. Nothing here goes through the gateway.
 */
import http from 'node:http'
import { isAlive, mapLimit } from './util.mjs'

export const BENCH_LABEL = 'dockgate-bench'

export class Engine {
  constructor(socketPath) {
    this.socketPath = socketPath
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  }

  request(method, path, body, timeoutMs = 30_000, extraHeaders = {}) {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const req = http.request(
        {
          socketPath: this.socketPath,
          path,
          method,
          agent: this.agent,
          headers: {
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': payload.length }
              : {}),
            ...extraHeaders,
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            resolve({
              status: res.statusCode,
              text,
              json: () => JSON.parse(text),
            })
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`engine ${method} ${path} timed out`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  async json(method, path, body, timeoutMs) {
    const answer = await this.request(method, path, body, timeoutMs)
    if (answer.status >= 300) {
      throw new Error(`engine ${method} ${path}: ${answer.status} ${answer.text.slice(0, 200)}`)
    }
    return answer.text ? answer.json() : undefined
  }

  async createContainer({ name, image, cmd, labels }) {
    const created = await this.json('POST', `/containers/create?name=${encodeURIComponent(name)}`, {
      Image: image,
      Cmd: cmd,
      Labels: labels,
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'json-file', Config: {} } },
    })
    return created.Id
  }

  async containerIds(labelFilter) {
    const filters = encodeURIComponent(JSON.stringify({ label: [labelFilter] }))
    const list = await this.json('GET', `/containers/json?all=1&filters=${filters}`)
    return list.map((c) => ({ id: c.Id, labels: c.Labels ?? {} }))
  }

  async remove(id) {
    const answer = await this.request('DELETE', `/containers/${id}?force=1&v=1`)
    if (answer.status >= 300 && answer.status !== 404) {
      throw new Error(`engine remove ${id}: ${answer.status} ${answer.text.slice(0, 200)}`)
    }
  }

  async removeAll(ids) {
    await mapLimit(ids, 4, (id) => this.remove(id).catch(() => {}))
  }

  close() {
    this.agent.destroy()
  }
}

/**
 * Removes containers left by earlier bench runs that died without cleaning up: their run id
 * starts with the pid of a process that no longer exists. A concurrent, living run is left alone.
 */
export async function removeStaleBenchContainers(engine) {
  const all = await engine.containerIds(BENCH_LABEL)
  const stale = all.filter(({ labels }) => {
    const pid = Number(/^(\d+)-/.exec(labels[BENCH_LABEL] ?? '')?.[1])
    return Number.isInteger(pid) && !isAlive(pid)
  })
  await engine.removeAll(stale.map((c) => c.id))
  return stale.length
}
