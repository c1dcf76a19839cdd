import { describe, expect, it } from 'vitest'
import { parseStoreUrl, redactStoreUrl, storeSettingsFromEnv } from '../../src/store/config.ts'

const SECRET = 'a-shared-secret-of-enough-length'

describe('DOCKGATE_STORE and DOCKGATE_SECRET', () => {
  it('are memory and a per-process key when unset', () => {
    expect(storeSettingsFromEnv({})).toEqual({
      store: { kind: 'memory', display: 'memory' },
      secret: undefined,
    })
    expect(storeSettingsFromEnv({ DOCKGATE_STORE: '' }).store.kind).toBe('memory')
  })

  it('name a Redis by URL, with its database, and never show its password', () => {
    const { store, secret } = storeSettingsFromEnv({
      DOCKGATE_STORE: 'redis://user:s3cr%40t@127.0.0.1:6390/2',
      DOCKGATE_SECRET: SECRET,
    })
    expect(store).toEqual({
      kind: 'redis',
      host: '127.0.0.1',
      port: 6390,
      db: 2,
      username: 'user',
      password: 's3cr@t',
      display: 'redis://***@127.0.0.1:6390/2',
    })
    expect(secret).toBe(SECRET)
    expect(parseStoreUrl('redis://localhost')).toMatchObject({ port: 6379, db: 0 })
    expect(parseStoreUrl('redis://:pw@localhost/0').display).toBe('redis://***@localhost:6379/0')
  })

  it.each([
    ['not a URL', 'localhost:6379'],
    ['another scheme', 'http://127.0.0.1:6379'],
    ['a database that is no number', 'redis://127.0.0.1/cache'],
    ['a database beyond 15', 'redis://127.0.0.1/16'],
    ['a query', 'redis://127.0.0.1/0?password=hunter2'],
  ])('refuse %s in one line, without the password', (_why, url) => {
    const withPassword = url.replace('://', '://u:hunter2@')
    for (const text of [url, withPassword]) {
      let message = ''
      try {
        storeSettingsFromEnv({ DOCKGATE_STORE: text, DOCKGATE_SECRET: SECRET })
      } catch (error) {
        message = (error as Error).message
      }
      expect(message).toMatch(/^DOCKGATE_STORE .+; expected redis:\/\//)
      expect(message).not.toContain('\n')
      expect(message).not.toContain('hunter2')
    }
  })

  it('refuse Redis without a secret, and a short secret', () => {
    expect(() => storeSettingsFromEnv({ DOCKGATE_STORE: 'redis://:hunter2@127.0.0.1/0' })).toThrow(
      'DOCKGATE_STORE is redis://***@127.0.0.1:6379/0 but DOCKGATE_SECRET is not set',
    )
    expect(() => storeSettingsFromEnv({ DOCKGATE_SECRET: 'short' })).toThrow(
      'DOCKGATE_SECRET must be at least 16 characters long',
    )
  })

  it('redact a URL in any text', () => {
    expect(redactStoreUrl('connect to redis://user:pw@h:1/0 failed')).toBe(
      'connect to redis://***@h:1/0 failed',
    )
  })
})
