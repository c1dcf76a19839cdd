/** The typed Hono environment shared by every route and middleware. */
import type { ExecAuditDetail } from '../domain/audit.ts'
import type { Guard } from '../domain/guard.ts'
import type { Credential, Principal } from '../domain/principal.ts'
import type { ProblemCode } from '../errors.ts'
import type { EngineScope } from './engines.ts'
import type { HeldSession } from './held-streams.ts'

export interface AppEnv {
  Variables: {
    principal: Principal
    /** The credential the request came with, to judge it again when the rules change. */
    credential: Credential
    requestId: string
    /** Policy decisions and audit records for this request (authenticated routes only). */
    guard: Guard
    /** The code of the problem this request answered with, for the audit record. */
    problemCode: ProblemCode
    /** Whether the matched route is a declared event stream, once known (`isEventStream`). */
    eventStream: boolean
    /**
     * The engine this request is for (`http/engines.ts`); unset when the path names none and the
     * caller may not use `default`. Read it through `engineScope(c)`.
     */
    engine: EngineScope
    /** What an exec ran, for its audit record (routes/exec.ts). */
    execAudit: ExecAuditDetail
    /** The WebSocket session this request's upgrade opened: what its stream slot follows. */
    session: HeldSession
  }
}
