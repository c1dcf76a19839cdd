/**
 * @module Policy decisions for one request: enforce them, or in audit mode record and allow.
 */
import type { ProblemError } from '../errors.ts'
import { isoNow } from '../observability/iso-time.ts'
import type { AuditEntry, AuditSink } from './audit.ts'
import type { Principal } from './principal.ts'

export class Guard {
  readonly principal: Principal
  readonly #sink: AuditSink
  readonly #requestId: string | undefined
  readonly #action: string
  /** An enforced denial was recorded for this request already. */
  recordedDenial = false

  constructor(
    principal: Principal,
    sink: AuditSink,
    requestId: string | undefined,
    action: string,
  ) {
    this.principal = principal
    this.#sink = sink
    this.#requestId = requestId
    this.#action = action
  }

  get auditMode(): boolean {
    return this.principal.policy.mode === 'audit'
  }

  /**
   * A policy says no. Enforce mode: recorded as denied, and `error` is thrown. Audit mode:
   * recorded as `would_deny`, and the request goes on.
   */
  deny(reason: string, target: string | null, error: ProblemError): void {
    this.recordedDenial ||= !this.auditMode
    this.record({
      outcome: this.auditMode ? 'allowed' : 'denied',
      decision: this.auditMode ? 'would_deny' : 'deny',
      reason,
      target,
      status: this.auditMode ? null : error.status,
    })
    if (!this.auditMode) throw error
  }

  record(
    entry: Pick<AuditEntry, 'outcome' | 'decision' | 'reason' | 'target' | 'status' | 'exec'>,
  ): void {
    this.#sink({
      time: isoNow(),
      requestId: this.#requestId,
      principal: this.principal.id,
      action: this.#action,
      ...entry,
    })
  }
}
