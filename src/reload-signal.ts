/**
 * @module The reload signal: a port through which one instance that reloaded its config tells
 * every other instance to reload theirs, so that a token removed from the configuration stops
 * working, and its open streams end, on every instance (not only where the reload happened).
 *
 * The signal carries no config: each instance reads its own file again (deploy the same file to
 * every instance). A message names the instance that sent it, which ignores its own.
 *
 * Adapters: `memoryReloadBus` joins the instances of one process (one instance alone has nobody
 * to tell); `redisReloadSignal` is a Redis pub/sub channel, listened to on a connection of its
 * own (a subscribed connection can send nothing else).
 */
import type { RedisClientType } from '@redis/client'

export interface ReloadSignal {
  /** Tells every other instance to reload. Rejects when the signal cannot be sent. */
  publish(): Promise<void>
  /**
   * Calls `listener` whenever another instance asks for a reload; resolves once listening, with
   * the function that stops.
   */
  listen(listener: () => void): Promise<() => Promise<void>>
}

/** Signals for instances in one process: each call is one instance's. */
export function memoryReloadBus(): () => ReloadSignal {
  const listeners = new Map<() => void, symbol>()
  return () => {
    const self = Symbol('instance')
    return {
      async publish() {
        for (const [listener, owner] of listeners) if (owner !== self) listener()
      },
      async listen(listener) {
        listeners.set(listener, self)
        return async () => {
          listeners.delete(listener)
        }
      },
    }
  }
}

export interface RedisReloadSignalOptions {
  /** The pub/sub channel every instance shares. */
  channel: string
}

/**
 * A Redis pub/sub channel: `publisher` is any connected client; `subscriber` a connected client
 * of its own, which this signal puts in subscribed mode.
 */
export function redisReloadSignal(
  publisher: RedisClientType,
  subscriber: RedisClientType,
  options: RedisReloadSignalOptions,
): ReloadSignal {
  const self = crypto.randomUUID()
  return {
    async publish() {
      await publisher.publish(options.channel, self)
    },
    async listen(listener) {
      const onMessage = (message: string) => {
        if (message !== self) listener()
      }
      // Opened here, not before: connecting waits (retrying) until Redis answers.
      if (!subscriber.isOpen) await subscriber.connect()
      await subscriber.subscribe(options.channel, onMessage)
      return () => subscriber.unsubscribe(options.channel, onMessage)
    },
  }
}
