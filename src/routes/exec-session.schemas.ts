/**
 * @module The document's entry for `GET /v1/containers/{id}/exec/session` (a WebSocket).
 */

import { createRoute, z } from '@hono/zod-openapi'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import { ContainerRefParams, ENGINE_PROBLEMS, problems, scoped, strictQuery } from './common.ts'

export const execSessionRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/exec/session',
  operationId: 'execSession',
  tags: ['exec'],
  summary: 'An interactive command in a running container, over a WebSocket',
  description: [
    'Open with a WebSocket client (browsers: `?ticket=` from `POST /v1/stream-tickets`, as they',
    'cannot send Authorization). Scope, policy (`exec.allowed`) and ownership are checked before',
    'the upgrade. Then, as JSON text messages: the client sends',
    '`{"type":"start","cmd":[…],"env"?,"workingDir"?,"timeoutSeconds"?,"tty"?}` first (the same',
    'strict fields as `POST …/exec`, plus `tty`), then `{"type":"stdin","data":"…"}` (or binary',
    'messages: stdin bytes), `{"type":"resize","rows":24,"cols":80}` (TTY only) and',
    '`{"type":"eof"}` (ends stdin). The gateway sends `{"type":"stdout"|"stderr","data":"…"}`',
    '(with a TTY, all output is `stdout`), then `{"type":"exit","exitCode":0,"timedOut":false}`',
    'and closes (1000). Bad input or a refusal: `{"type":"problem","problem":{…}}` (a `Problem`), then close',
    '1008 (1011 on an engine failure). Closing the socket kills the command.',
    'A session counts as one of its principal’s open streams (`limits.streamsPerClient`) from the',
    'upgrade until its socket closes: at the cap the handshake is answered 429. A config reload',
    'that revokes its credential sends `{"type":"revoked","reason":"revoked"|"changed","detail"}`,',
    'stops the command, then closes 4001 (`revoked`) or 4002 (`changed`: its scopes or policy',
    'changed); the gateway’s shutdown sends `{"type":"shutdown",…}`, stops it and closes 1001.',
  ].join(' '),
  ...scoped('exec', { eventStream: true }),
  request: {
    params: ContainerRefParams,
    query: strictQuery({
      ticket: z.string().max(TICKET_MAX_LENGTH).optional().openapi({
        description:
          'A stream ticket (POST /v1/stream-tickets), for browser WebSockets that cannot send headers',
      }),
    }),
  },
  responses: {
    101: { description: 'Switching Protocols: the WebSocket session' },
    ...problems(400, 404, 426, 501, ...ENGINE_PROBLEMS),
  },
})
