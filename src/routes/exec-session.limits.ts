/**
 * @module What one exec WebSocket may make the gateway hold or do beyond the HTTP limits its
 * upgrade passed (routes/exec-session.ts); the Node entry bounds a message to the first.
 */

/**
 * Bytes of a session's messages received and not yet handed to the command at most: stdin waits
 * until the engine takes it, so a client writing faster than its command reads would otherwise
 * fill the gateway's memory. Past it, the session ends with a problem.
 */
export const SESSION_QUEUE_BYTES = 1024 * 1024

/**
 * One resize reaches the engine per this long at most (each is an engine call); the latest size
 * asked for meanwhile is the one sent.
 */
export const RESIZE_INTERVAL_MS = 50
