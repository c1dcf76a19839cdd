/**
 * The app's front middleware (src/http/front.ts) on its own, for tests of what it does first and
 * last on every request (the request id, the hand-over of event streams): metrics kept, the
 * request log dropped, and no 405s (no routes of other methods to look up).
 */
import { type FrontOptions, frontRequests } from '../../src/http/front.ts'
import { Metrics } from '../../src/observability/metrics.ts'

export function frontOnly(
  options: Pick<FrontOptions, 'writeRequestId' | 'eventStreamOutput'> = {},
) {
  return frontRequests({
    metrics: new Metrics(),
    requestLog: () => {},
    methodNotAllowed: () => Promise.resolve(),
    ...options,
  })
}
