/** The typed Hono environment shared by every route and middleware. */
import type { Principal } from './auth/principal.ts'

export interface AppEnv {
  Variables: {
    principal: Principal
    requestId: string
  }
}
