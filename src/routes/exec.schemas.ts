/**
 * @module Schemas of `POST /v1/containers/{id}/exec`: the strict request, the JSON answer and the
 * events of its event-stream answer.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { EXEC_TAG_KEY } from '../engine/exec.ts'
import { ContainerRefParams, ENGINE_PROBLEMS, ProblemSchema, problems, scoped } from './common.ts'
import { Env } from './containers.schemas.ts'

/** One argument: no NUL (the engine would cut it there), bounded so the body fits 64 KiB. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: it refuses NUL, written \x00 for other validators
const NO_NUL = /^[^\x00]*$/
const Arg = z
  .string()
  .max(8 * 1024)
  .regex(NO_NUL, 'no NUL bytes')

export const ExecBody = z
  .strictObject({
    cmd: z
      .array(Arg)
      .min(1)
      .max(256)
      .openapi({
        description: 'The command and its arguments, run without a shell unless it names one',
        example: ['sh', '-c', 'echo hello'],
      }),
    env: Env.refine((env) => !Object.hasOwn(env, EXEC_TAG_KEY), {
      message: `${EXEC_TAG_KEY} is the gateway's own`,
      path: [EXEC_TAG_KEY],
    })
      .optional()
      .openapi({ description: 'Extra environment; its values are never written to the audit' }),
    workingDir: z
      .string()
      .max(4096)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: it refuses NUL, written \x00 for other validators
      .regex(/^\/[^\x00]*$/, 'an absolute path')
      .optional(),
    timeoutSeconds: z.number().int().min(1).max(86_400).optional().openapi({
      description:
        'Stop the command after this many seconds; at most (and by default) the policy’s `exec.maxTimeoutSeconds`',
    }),
  })
  .openapi('ExecRequest')

export type ExecBody = z.infer<typeof ExecBody>

export const ExecResultSchema = z
  .object({
    exitCode: z.number().int().nullable().openapi({
      description:
        'The command’s exit status; null when it timed out and could not be killed (it may still run)',
    }),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean().openapi({
      description: 'More output came than one answer holds (1 MiB of stdout and stderr together)',
    }),
    timedOut: z.boolean().openapi({ description: 'It ran out of time and was killed' }),
  })
  .openapi('ExecResult')

const ExecOutputData = z
  .object({ text: z.string() })
  .openapi('ExecOutputData', { description: 'The data of a `stdout` or `stderr` event' })
const ExecEndData = z
  .object({ exitCode: z.number().int().nullable(), timedOut: z.boolean() })
  .openapi('ExecEndData', { description: 'The data of the final `end` event' })

const ExecStreamEvent = z
  .union([
    z.object({ event: z.enum(['stdout', 'stderr']), data: ExecOutputData }),
    z.object({ event: z.literal('end'), data: ExecEndData }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
  ])
  .openapi('ExecStreamEvent', {
    description: 'One server-sent event of an exec: `event:` name, `data:` JSON',
  })

export const execRoute = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/exec',
  operationId: 'execInContainer',
  tags: ['exec'],
  summary: 'Run a command in a running container',
  description: [
    'Runs `cmd` in the container (the caller’s own) as the user its policy names, never',
    'privileged, with no stdin and no TTY, until it ends or `timeoutSeconds` pass (then it is',
    'killed). Needs the `exec` scope and a policy with `exec.allowed`. Answers JSON',
    '(`ExecResult`: stdout and stderr apart, at most 1 MiB together) or, with',
    '`Accept: text/event-stream`, server-sent events as the output comes: `stdout`/`stderr`',
    '(`ExecOutputData`), then `end` (`ExecEndData`). A command that could not be run (missing,',
    'not executable, unknown user or workingDir) is a 400.',
  ].join(' '),
  ...scoped('exec', { eventStream: true, noQuery: true }),
  request: {
    params: ContainerRefParams,
    body: { required: true, content: { 'application/json': { schema: ExecBody } } },
  },
  responses: {
    200: {
      description: 'How the command ended, with its output (or the event stream)',
      content: {
        'application/json': { schema: ExecResultSchema },
        'text/event-stream': { schema: ExecStreamEvent },
      },
    },
    ...problems(400, 404, 409, 413, 415, ...ENGINE_PROBLEMS),
  },
})
