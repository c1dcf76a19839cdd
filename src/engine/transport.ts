/**
 * @module The port through which the core reaches the Docker Engine.
 *
 * The core never knows whether it talks through a Unix socket, TCP, TLS or Deno's own client:
 * it hands a `Request` whose path is the Engine API path to `fetch` and gets a `Response` with
 * a streaming body back. Adapters live in `src/transport/`, one file per runtime or wire.
 */
export interface EngineTransport {
  /** Send a request. The URL's origin is `http://docker`; adapters replace or ignore it. */
  fetch(request: Request): Promise<Response>
  /** Release pooled connections. Safe to call twice. */
  close(): Promise<void>
  /** Where the engine is, for logs and the readiness answer, e.g. `unix:///var/run/docker.sock`. */
  readonly description: string
}

/** The origin every engine request is addressed to; socket transports ignore it. */
export const ENGINE_ORIGIN = 'http://docker'
