/**
 * @module What every long-running entry point does the same way: load the config (creating the
 * first admin token when there is no credential at all), build the authenticator, reload it on
 * demand, log as JSON lines, and say so when no engine answers.
 */

import { createClient, type RedisClientType } from '@redis/client'
import { authenticatorFromConfig, SwappableAuthenticator } from './auth/from-config.ts'
import {
  type ConfigFile,
  type ConfigReloads,
  configReloads,
  DEFAULT_SETTINGS,
  settingsFromConfig,
} from './config.ts'
import {
  type ConfigFiles,
  DEFAULT_CONFIG_PATH,
  loadConfig,
  loadOrCreateConfig,
  readJwks,
} from './config-store.ts'
import type { EngineClient } from './engine/client.ts'
import type { SharedRing } from './events/shared.ts'
import { redisSharedRing } from './events/shared-redis.ts'
import type { WritePositions } from './model/positions.ts'
import { redisWritePositions } from './model/positions-redis.ts'
import { type ReloadSignal, redisReloadSignal } from './reload-signal.ts'

export type Log = (fields: Record<string, unknown>) => void

/** Each message as one JSON line, with its time, through `write`. */
export const jsonLogTo =
  (write: (line: string) => void): Log =>
  (fields) =>
    write(JSON.stringify({ time: new Date().toISOString(), ...fields }))

export interface EntryEnvironment {
  DOCKGATE_CONFIG?: string | undefined
  DOCKGATE_TOKEN?: string | undefined
  DOCKGATE_JWT_SECRET?: string | undefined
}

export interface Credentials {
  config: ConfigFile
  configPath: string
  authenticator: SwappableAuthenticator
  /** Each successful reload, once its credentials are in force: give it to the app. */
  reloads: ConfigReloads
  /** Reads the config file again; on an error the previous one stays (and it is logged). */
  reload(): void
}

export async function loadCredentials(
  files: ConfigFiles,
  env: EntryEnvironment,
  log: Log,
): Promise<Credentials> {
  const configPath = env.DOCKGATE_CONFIG ?? DEFAULT_CONFIG_PATH
  const authEnv = {
    envToken: env.DOCKGATE_TOKEN || undefined,
    jwtSecret: env.DOCKGATE_JWT_SECRET || undefined,
  }
  const hasOther = authEnv.envToken !== undefined || authEnv.jwtSecret !== undefined
  const { config, createdToken } = await loadOrCreateConfig(files, configPath, hasOther)
  if (createdToken) {
    console.log(
      `\nCreated ${configPath} with one admin token. It is shown only this once:\n\n  ${createdToken}\n\n` +
        'Only its hash is stored. Use it as: Authorization: Bearer <token>\n',
    )
  }
  const authenticator = new SwappableAuthenticator(
    authenticatorFromConfig(config, { ...authEnv, jwks: readJwks(files, config, configPath) }),
  )
  const reloads = configReloads()
  const reload = () => {
    try {
      const next = loadConfig(files, configPath)
      const jwks = readJwks(files, next, configPath)
      authenticator.replace(authenticatorFromConfig(next, { ...authEnv, jwks }))
      reloads.notify(settingsFromConfig(next))
      log({ level: 'info', msg: 'config reloaded', tokens: next.tokens.length })
    } catch (error) {
      log({
        level: 'error',
        msg: 'config reload failed; the previous config stays',
        error: String(error),
      })
    }
  }
  return { config, configPath, authenticator, reloads, reload }
}

/**
 * Reloads on every instance: a reload here tells the others (`signal`), and one asked for by
 * another instance reloads here. Answers the reload to call on SIGHUP or a config change, and
 * the function that stops listening.
 */
export async function shareReloads(
  credentials: Pick<Credentials, 'reload'>,
  signal: ReloadSignal,
  log: Log,
): Promise<{ reload(): void; stop(): Promise<void> }> {
  const stop = await signal.listen(() => {
    log({ level: 'info', msg: 'config reload asked for by another instance' })
    credentials.reload()
  })
  return {
    reload() {
      credentials.reload()
      signal.publish().catch((error: unknown) =>
        log({
          level: 'error',
          msg: 'the other instances could not be told to reload',
          error: String(error),
        }),
      )
    },
    stop,
  }
}

export interface SharedInstancePorts {
  /** For `createApp`: the events replay ring every instance shares. */
  sharedEvents: SharedRing
  /** For `createApp`: the positions of every instance's changes. */
  positions: WritePositions
  /** For {@link shareReloads}. */
  reloadSignal: ReloadSignal
  /** Closes the connection the reload signal listens on (not `client`). */
  close(): Promise<void>
}

/**
 * What instances share through Redis beyond the state store: the events ring, the write
 * positions and the reload signal, from one connected client (and one more connection, of its
 * own, that the reload signal listens on). Every key starts with `prefix`.
 */
export async function sharedInstancePorts(
  client: RedisClientType,
  options: {
    prefix: string
    ringSize: number
    logError: (message: string, error: unknown) => void
  },
): Promise<SharedInstancePorts> {
  const listener = client.duplicate()
  // Without a listener, a connection error would end the process; the client reconnects itself.
  let failing = false
  listener.on('error', (error: unknown) => {
    if (!failing) options.logError('reload signal connection failed', error)
    failing = true
  })
  listener.on('ready', () => {
    failing = false
  })
  await listener.connect()
  const { prefix, logError } = options
  return {
    sharedEvents: redisSharedRing(client, { prefix, capacity: options.ringSize, logError }),
    positions: redisWritePositions(client, { prefix, logError }),
    reloadSignal: redisReloadSignal(client, listener, { channel: `${prefix}reload` }),
    close: () => listener.close(),
  }
}

/**
 * A Redis client for what the instances share, and the ports on it. (The state store's own
 * client can take its place once both are in.)
 */
export async function connectShared(
  url: string,
  ringSize: number | undefined,
  logError: (message: string, error: unknown) => void,
): Promise<SharedInstancePorts> {
  const client = createClient({ url })
  let failing = false
  client.on('error', (error: unknown) => {
    if (!failing) logError('shared store connection failed', error)
    failing = true
  })
  client.on('ready', () => {
    failing = false
  })
  await client.connect()
  const ports = await sharedInstancePorts(client, {
    prefix: 'dockgate:',
    ringSize: ringSize ?? DEFAULT_SETTINGS.eventsRingSize,
    logError,
  })
  return {
    ...ports,
    async close() {
      await ports.close()
      await client.close()
    },
  }
}

/** Logs whether the engine answers; if not, how to start the project's own. */
export function reportEngine(engine: EngineClient, log: Log): void {
  engine.ping().then(
    ({ apiVersion }) => log({ level: 'info', msg: 'engine answers', apiVersion }),
    () =>
      log({
        level: 'warn',
        msg: `no Docker Engine answers at ${engine.transport.description}; /readyz says 503 until one does`,
        hint: 'start the project engine with: eval "$(bash scripts/engine.sh up)" and restart, or set DOCKER_HOST',
      }),
  )
}
