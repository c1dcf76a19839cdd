/**
 * @module A principal's policy: which images it may run, how much it may take, what it may see.
 *
 * The policy narrows what the curated API allows; nothing in it can widen the locked-down
 * HostConfig the gateway builds (see `src/routes/containers.create.ts`).
 */
import { z } from 'zod'

const LabelSelector = z
  .string()
  .max(512)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._/-]*(=[^\0\r\n]*)?$/, '`key` or `key=value`')

const Limits = z.strictObject({
  memory: z
    .number()
    .int()
    .min(6 * 1024 * 1024)
    .optional(),
  cpus: z.number().min(0.01).optional(),
  pids: z.number().int().min(1).optional(),
})

/**
 * Who may run commands in its containers, for how long, as whom. Off unless the policy says so:
 * exec runs a process inside a container with the container's own reach, whatever its command.
 */
const ExecPolicy = z.strictObject({
  /** Whether this principal may exec at all (with the `exec` scope too). */
  allowed: z.boolean().default(false),
  /**
   * The user every exec runs as (`name`, `uid` or `uid:gid`, as the engine takes it): the
   * gateway never takes one from the request. Root only when it says `root` or `0` itself.
   */
  user: z
    .string()
    .max(65)
    .regex(
      /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}(?::[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31})?$/,
      '`user` or `uid[:gid]`',
    )
    .default('65534:65534'),
  /** The longest an exec may run, in seconds; a request asks for as long or shorter. */
  maxTimeoutSeconds: z.number().int().min(1).max(86_400).default(60),
})

export const PolicySchema = z.strictObject({
  /** `audit`: a denial is logged as `would_deny` and the request goes through. */
  mode: z.enum(['enforce', 'audit']).default('enforce'),
  /** Image references this principal may create containers from: glob patterns (`*`, `?`). */
  images: z.array(z.string().min(1).max(255)).default([]),
  /** Applied when a create request names none. */
  defaults: Limits.default({}),
  /** The most a create request may ask for; unset limits keep the built-in maxima (`BUILT_IN_MAX`). */
  max: Limits.default({}),
  /**
   * Containers (any state) this principal may own at once; every replica of a Swarm service it
   * owns counts as one.
   */
  maxContainers: z.number().int().min(0).max(100_000).default(20),
  /** Swarm networks (by name) its services may attach to; none by default (loopback only). */
  networks: z
    .array(
      z
        .string()
        .min(1)
        .max(128)
        .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/),
    )
    .max(16)
    .default([]),
  /** Besides its own, the containers this principal may see and act on (all selectors match). */
  visibleLabels: z.array(LabelSelector).max(16).default([]),
  /**
   * The engines this principal may use, by name (`*` and `?` globs); any other answers 404 as an
   * unknown one does. Admins too: which engines a credential reaches is the operator's choice.
   */
  engines: z
    .array(
      z
        .string()
        .min(1)
        .max(63)
        .regex(/^[a-z0-9_*?-]+$/, 'an engine name or glob'),
    )
    .max(64)
    .default(['default']),
  /** Exec in its own containers: off unless allowed (see `ExecPolicy`). */
  exec: ExecPolicy.default({ allowed: false, user: '65534:65534', maxTimeoutSeconds: 60 }),
})

export type Policy = z.infer<typeof PolicySchema>

/**
 * A principal without a policy of its own: sees only its own containers, runs no image. Parsed
 * once, at import, without zod's compiled fast path (as the config is, src/config.ts says why).
 */
export const DEFAULT_POLICY: Policy = PolicySchema.parse({}, { jitless: true })

const GiB = 1024 * 1024 * 1024

/**
 * The gateway's own defaults when neither the request nor the policy says: never unlimited.
 * One CPU: a container that spins cannot take a whole multi-core host from its neighbours.
 */
export const BASE_DEFAULTS = { memory: 512 * 1024 * 1024, pids: 256, cpus: 1 } as const

/**
 * The most a request may ask for when its policy has no `max` for that limit; a policy raises
 * them by saying so. 8 GiB and 4 CPUs are a large job on a shared host, beyond which an operator
 * should decide; 4096 processes are far more than a job runs, and few enough that a fork bomb
 * stays a nuisance of its own container (systemd's default TasksMax on a 32768-pid host is 4915).
 */
export const BUILT_IN_MAX = { memory: 8 * GiB, pids: 4096, cpus: 4 } as const

/**
 * `*` matches any run of characters (slashes included), `?` one character. Matched by hand, in
 * at most pattern × value steps: a pattern can be a client's (`/v1/events?engine=`), and the
 * regular expression it once became backtracked on runs of `*`, in time growing as their number
 * to the power of the value's length (`**…*x` against `default`: 1.4 s of a blocked event loop for
 * 34 stars).
 */
export function globMatches(pattern: string, value: string): boolean {
  let p = 0
  let v = 0
  // The last `*` seen, and where in the value it began to match: a mismatch retries from there.
  let star = -1
  let from = 0
  while (v < value.length) {
    const at = pattern[p]
    if (at === '*') {
      star = p++
      from = v
    } else if (at !== undefined && (at === '?' || at === value[v])) {
      p++
      v++
    } else if (star !== -1) {
      p = star + 1
      v = ++from
    } else {
      return false
    }
  }
  while (pattern[p] === '*') p++
  return p === pattern.length
}

/** Whether a label set matches a selector: `key` needs the key, `key=value` the exact value. */
export function labelMatches(labels: Readonly<Record<string, string>>, selector: string): boolean {
  const at = selector.indexOf('=')
  if (at === -1) return Object.hasOwn(labels, selector)
  return labels[selector.slice(0, at)] === selector.slice(at + 1)
}

/** Whether a policy lets its principal use the engine of this name (`engines` globs). */
export function mayUseEngine(policy: Policy, name: string): boolean {
  return policy.engines.some((pattern) => globMatches(pattern, name))
}
