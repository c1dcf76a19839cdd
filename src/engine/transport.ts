/**
 * @module The port through which the core reaches the Docker Engine.
 *
 * The core never knows whether it talks through a Unix socket, TCP, TLS or Deno's own client:
 * it hands a `Request` whose path is the Engine API path to `fetch` and gets a `Response` with
 * a streaming body back. Adapters live in `src/transport/`, one file per runtime or wire.
 */
export interface EngineTransport {
  /** Send a request. The URL's origin is `http://docker`; adapters replace or ignore it. */
  fetch(request: Request, options?: EngineCallOptions): Promise<Response>
  /**
   * Sends a request the engine answers with `101 UPGRADED` and then takes the connection over
   * (hijacks it): bytes both ways, e.g. an exec's stdin and its output (docs/engine-notes.md#exec).
   * Absent where the runtime's client cannot hand out the raw connection (fetch on the edge).
   * Rejects with the engine's answer as a `Response` when it does not upgrade (a 404, a 409).
   */
  upgrade?(request: Request, options?: UpgradeOptions): Promise<EngineConnection>
  /** Release pooled connections. Safe to call twice. */
  close(): Promise<void>
  /** Where the engine is, for logs and the readiness answer, e.g. `unix:///var/run/docker.sock`. */
  readonly description: string
}

/** How an upgraded connection is read. */
export interface UpgradeOptions {
  /**
   * Bytes of what the engine writes that are read before the consumer asks for them, so the
   * engine's output keeps moving while the consumer works on a chunk (by default one chunk).
   */
  readAheadBytes?: number
  /**
   * The caller takes what the engine writes chunk by chunk where it can
   * (`PushedByteStream.pushTo`, src/streams/pushed.ts): a transport that can answers such a
   * `readable`, read ahead of the caller's pauses by at most `readAheadBytes` (Node: the socket
   * reads on into a queue, src/transport/node-reads.ts); any other is read as usual.
   */
  push?: boolean
}

/** A connection the engine took over: what it writes, and a way to write to it. */
export interface EngineConnection {
  /** What the engine writes, until it closes the connection. */
  readonly readable: ReadableStream<Uint8Array>
  /** Writes bytes; resolves once they are handed to the connection. */
  write(chunk: Uint8Array): Promise<void>
  /** Ends what we write (the engine sees end of input), reading goes on. */
  closeWrite(): Promise<void>
  /** Closes the connection both ways. Safe to call twice. */
  close(): void
}

/** What the caller knows of a call that the request does not say. */
export interface EngineCallOptions {
  /**
   * The engine may hold this call for longer than a moment (a follow, a stream, a wait, a stop
   * waiting out its timeout, a long log read): a pooled transport gives it a connection of its own.
   */
  held?: boolean
  /**
   * The caller takes the body chunk by chunk where it can (`PushedByteStream.pushTo`,
   * src/streams/pushed.ts): a transport that can answers such a body; any other body is read as
   * usual.
   */
  push?: boolean
}

/** The origin every engine request is addressed to; socket transports ignore it. */
export const ENGINE_ORIGIN = 'http://docker'
