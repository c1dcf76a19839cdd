/**
 * The exec SSE phase's pass-through floor (bench/exec.mjs, not a target): a bare `node:http`
 * server that runs an exec on the engine and hands the client its hijacked output as it reads it
 * off the engine's socket, the bytes as they are (no frames taken apart, no events, no auth, no
 * limits). What one more process between the engine and the client costs on this machine (a
 * socket read, a write to loopback TCP, the client reading TCP instead of the Unix socket, four
 * processes on the cores instead of three), for the gateway's SSE rate to be read against.
 *
 *   POST /exec/<container id>  body: the command as a JSON array   → the raw multiplexed output
 *
 * Env: PORT, DOCKER_SOCKET (the engine's Unix socket). The exec runs as 65534:65534, as the
 * bench's exec policy has the gateway run it.
 */
import http from 'node:http'
import net from 'node:net'

const socketPath = process.env.DOCKER_SOCKET
const API = '/v1.41'

function engineJson(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body))
    const request = http.request(
      {
        socketPath,
        method,
        path: API + path,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (response) => {
        let text = ''
        response.on('data', (chunk) => {
          text += chunk
        })
        response.on('end', () =>
          response.statusCode < 300
            ? resolve(JSON.parse(text))
            : reject(new Error(`${path}: ${response.statusCode} ${text}`)),
        )
      },
    )
    request.on('error', reject)
    request.end(payload)
  })
}

async function passThrough(container, cmd, res) {
  const { Id } = await engineJson('POST', `/containers/${container}/exec`, {
    Cmd: cmd,
    User: '65534:65534',
    AttachStdout: true,
    AttachStderr: true,
  })
  const body = JSON.stringify({ Detach: false, Tty: false })
  const engine = net.connect({ path: socketPath })
  engine.write(
    `POST ${API}/exec/${Id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  )
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  let head = Buffer.alloc(0)
  engine.on('data', (chunk) => {
    if (head) {
      // The engine's answer head (200, then the output until it closes) is not passed on
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      chunk = head.subarray(end + 4)
      head = undefined
      if (chunk.length === 0) return
    }
    if (!res.write(chunk)) {
      engine.pause()
      res.once('drain', () => engine.resume())
    }
  })
  engine.on('end', () => res.end())
  engine.on('error', () => res.destroy())
  res.on('close', () => engine.destroy())
}

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  const match = /^\/exec\/([0-9a-f]+)$/.exec(req.url ?? '')
  if (req.method !== 'POST' || !match) {
    res.writeHead(404)
    return res.end()
  }
  let text = ''
  req.on('data', (chunk) => {
    text += chunk
  })
  req.on('end', () => {
    passThrough(match[1], JSON.parse(text), res).catch((error) => {
      res.writeHead(502)
      res.end(String(error.message))
    })
  })
})
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
