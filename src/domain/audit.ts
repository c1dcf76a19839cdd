/**
 * @module Structured audit records: every mutating call and every denial, one JSON object each.
 */

export interface AuditEntry {
  time: string
  requestId: string | undefined
  /** The principal's id, or null when none authenticated. */
  principal: string | null
  /** `METHOD /route/pattern`, e.g. `POST /v1/containers/:id/stop`. */
  action: string
  /** The resource acted on (container ref, image), when there is one. */
  target: string | null
  outcome: 'allowed' | 'denied' | 'failed'
  /** In audit mode, a denial that was let through. */
  decision: 'allow' | 'deny' | 'would_deny'
  /** A stable reason code for denials and failures (a problem code or a policy reason). */
  reason: string | null
  status: number | null
  /** For an exec: what ran, where and as whom; env values are never recorded. */
  exec?: ExecAuditDetail
}

export interface ExecAuditDetail {
  /** The container's full id. */
  container: string
  cmd: readonly string[]
  /** The env keys it set, each value null (redacted). */
  env: Readonly<Record<string, null>>
  user: string
  workingDir: string | null
  timeoutSeconds: number
}

export type AuditSink = (entry: AuditEntry) => void

/** Writes each entry as one JSON line through `write` (stdout in the Node entry). */
export const jsonLineAudit =
  (write: (line: string) => void): AuditSink =>
  (entry) =>
    write(JSON.stringify({ audit: true, ...entry }))
