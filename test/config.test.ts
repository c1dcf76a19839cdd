import { describe, expect, it } from 'vitest'
import { engineTargets } from '../src/bootstrap.ts'
import {
  DEFAULT_SETTINGS,
  LIVE_SETTINGS,
  liveSettings,
  parseConfigFile,
  settingsFromConfig,
} from '../src/config.ts'
import { DEFAULT_POLICY, mayUseEngine, PolicySchema } from '../src/domain/policy.ts'

const HASH = `sha256:${'a'.repeat(64)}`

describe('parseConfigFile', () => {
  it('reads tokens and settings, with defaults for what is absent', () => {
    expect(parseConfigFile('{}', 'c.json')).toEqual({
      tokens: [],
      principals: {},
      exposeEnvKeys: [],
      limits: {},
      events: {},
      registries: {},
      engines: {},
    })
    const config = parseConfigFile(
      JSON.stringify({
        tokens: [{ name: 'ci', hash: HASH, scopes: ['containers:read'] }],
        exposeEnvKeys: ['MODE'],
      }),
      'c.json',
    )
    expect(config.tokens[0]).toEqual({ name: 'ci', hash: HASH, scopes: ['containers:read'] })
    expect(config.exposeEnvKeys).toEqual(['MODE'])
  })

  it('reads the engine budget from limits, 16 requests in progress per client by default', () => {
    expect(DEFAULT_SETTINGS.engineCallsPerPrincipal).toBe(16)
    const config = parseConfigFile('{"limits":{"engineCallsPerClient":4}}', 'c.json')
    expect(settingsFromConfig(config).engineCallsPerPrincipal).toBe(4)
    expect(() => parseConfigFile('{"limits":{"engineCallsPerClient":0}}', 'c.json')).toThrow(
      /limits\.engineCallsPerClient/,
    )
  })

  it('reads the events ring and queue sizes, the defaults where absent, and refuses what is out of bounds', () => {
    const config = parseConfigFile('{"events":{"ringSize":50000,"queueLimit":200}}', 'c.json')
    expect(settingsFromConfig(config)).toMatchObject({
      eventsRingSize: 50_000,
      eventsQueueLimit: 200,
    })
    const none = settingsFromConfig(parseConfigFile('{}', 'c.json'))
    expect(none).not.toHaveProperty('eventsRingSize')
    expect(none).not.toHaveProperty('eventsQueueLimit')
    expect(DEFAULT_SETTINGS).toMatchObject({ eventsRingSize: 10_000, eventsQueueLimit: 1_000 })
    for (const [events, field] of [
      ['{"ringSize":0}', /events\.ringSize/],
      ['{"ringSize":1000001}', /events\.ringSize/],
      ['{"ringSize":2.5}', /events\.ringSize/],
      ['{"queueLimit":100001}', /events\.queueLimit/],
      ['{"size":5}', /events.*size/],
    ] as const) {
      expect(() => parseConfigFile(`{"events":${events}}`, 'c.json')).toThrow(field)
    }
    // Read at start only: a reload does not resize the rings of a running gateway.
    expect(liveSettings(settingsFromConfig(config))).not.toHaveProperty('eventsRingSize')
  })

  it.each([
    ['invalid JSON', '{', /Cannot parse c\.json/],
    ['an unknown key', '{"tokenz":[]}', /tokenz/],
    [
      'a plain-text token',
      `{"tokens":[{"name":"x","hash":"secret","scopes":["admin"]}]}`,
      /tokens\.0\.hash/,
    ],
    [
      'an unknown scope',
      `{"tokens":[{"name":"x","hash":"${HASH}","scopes":["root"]}]}`,
      /tokens\.0\.scopes\.0/,
    ],
    ['no scopes', `{"tokens":[{"name":"x","hash":"${HASH}","scopes":[]}]}`, /tokens\.0\.scopes/],
    [
      'a duplicate name',
      `{"tokens":[{"name":"x","hash":"${HASH}","scopes":["admin"]},{"name":"x","hash":"${HASH}","scopes":["admin"]}]}`,
      /used twice/,
    ],
  ])('refuses %s, naming the problem', (_what, text, message) => {
    expect(() => parseConfigFile(text, 'c.json')).toThrow(message)
  })

  it('says where JSON that does not parse goes wrong, and quotes none of it (a config holds secrets)', () => {
    // The runtime's own message quotes the text around the fault: `..."assword": hunter2-To"...`.
    const unquoted = '{"registries":{"r":{"username":"u","password": hunter2-Top}}}'
    expect(() => parseConfigFile(unquoted, 'c.json')).toThrow(
      /^Cannot parse c\.json: it is not valid JSON$/,
    )
    expect(() => parseConfigFile('{\n  "limits": {"burst": 5,}\n}', 'c.json')).toThrow(
      /^Cannot parse c\.json: it is not valid JSON: Expected double-quoted property name at line 2, column 25$/,
    )
  })
})

describe('registries', () => {
  it('takes hosts with credentials or none, and passes them to the settings', () => {
    const config = parseConfigFile(
      JSON.stringify({
        registries: {
          '127.0.0.1:5000': {},
          'registry.example.com': { username: 'ci', password: 's3cret' },
          'docker.io': {},
        },
      }),
      'test.json',
    )
    expect(settingsFromConfig(config).registries).toEqual({
      '127.0.0.1:5000': {},
      'registry.example.com': { username: 'ci', password: 's3cret' },
      'docker.io': {},
    })
  })

  it.each([
    [{ 'https://r.example.com': {} }, 'registries.https://r.example.com'],
    [{ 'r.example.com': { username: 'ci' } }, 'username and password go together'],
    [{ 'r.example.com': { token: 'x' } }, 'token'],
  ])('refuses %j, and never shows a password in the error', (registries, message) => {
    const text = JSON.stringify({ registries })
    expect(() => parseConfigFile(text, 'c.json')).toThrow(message)
  })

  it('does not echo a password when the entry is refused', () => {
    const text = JSON.stringify({ registries: { 'r.example.com': { password: 'hunter2-xyz' } } })
    expect(() => parseConfigFile(text, 'c.json')).toThrow(/^(?!.*hunter2-xyz)/s)
  })
})

describe('settingsFromConfig and a reload', () => {
  it('passes readModel on (false: the engine answers every list and inspect)', () => {
    const config = parseConfigFile('{"readModel":false}', 'test.json')
    expect(settingsFromConfig(config).readModel).toBe(false)
    expect(settingsFromConfig(parseConfigFile('{}', 'test.json'))).not.toHaveProperty('readModel')
  })

  it('applies the live settings a reloaded config sets, and the defaults for those it left out', () => {
    const config = parseConfigFile(
      '{"limits":{"streamsPerClient":3},"secretLabelPatterns":["*pin*"],"readModel":false}',
      'test.json',
    )
    const live = liveSettings(settingsFromConfig(config))
    expect(live).toEqual({
      exposeEnvKeys: [],
      secretLabelPatterns: ['*pin*'],
      rateLimitPerSecond: DEFAULT_SETTINGS.rateLimitPerSecond,
      rateLimitBurst: DEFAULT_SETTINGS.rateLimitBurst,
      maxStreamsPerPrincipal: 3,
      engineCallsPerPrincipal: DEFAULT_SETTINGS.engineCallsPerPrincipal,
      registries: {},
    })
    // readModel needs a restart: a reload leaves it alone.
    expect(Object.keys(live)).toEqual([...LIVE_SETTINGS])
  })
})

describe('engines', () => {
  const ENGINES = {
    b: { host: 'tcp://127.0.0.1:23760', tlsVerify: true, certPath: '/certs/b' },
    local: { host: 'unix:///run/other.sock' },
  }

  it('reads each engine by name; DOCKER_HOST is `default` unless one is named so', () => {
    const config = parseConfigFile(JSON.stringify({ engines: ENGINES }), 'c.json')
    expect(config.engines).toEqual(ENGINES)
    const env = { DOCKER_HOST: 'unix:///var/run/docker.sock', HOME: '/root' }
    expect(engineTargets(config, env)).toEqual({
      default: { kind: 'unix', socketPath: '/var/run/docker.sock' },
      others: {
        b: { kind: 'tls', origin: 'https://127.0.0.1:23760', certPath: '/certs/b', verify: true },
        local: { kind: 'unix', socketPath: '/run/other.sock' },
      },
    })
    const named = parseConfigFile(
      JSON.stringify({ engines: { default: { host: 'http://127.0.0.1:2375' } } }),
      'c.json',
    )
    expect(engineTargets(named, env)).toEqual({
      default: { kind: 'tcp', origin: 'http://127.0.0.1:2375' },
      others: {},
    })
  })

  it('refuses engine names a path cannot carry, and hosts of other schemes, naming the field', () => {
    for (const name of ['B', '-b', 'a/b', 'a b', '*', 'x'.repeat(64)]) {
      expect(() =>
        parseConfigFile(JSON.stringify({ engines: { [name]: { host: 'unix:///s' } } }), 'c.json'),
      ).toThrow(/engines/)
    }
    expect(() =>
      parseConfigFile(JSON.stringify({ engines: { b: { host: 'ssh://me@host' } } }), 'c.json'),
    ).toThrow(/engines\.b\.host/)
    expect(() =>
      parseConfigFile(
        JSON.stringify({ engines: { b: { host: 'unix:///s', tls: true } } }),
        'c.json',
      ),
    ).toThrow(/engines\.b/)
    const relative = parseConfigFile(JSON.stringify({ engines: { b: { host: 'unix://s' } } }), 'c')
    expect(() => engineTargets(relative, {})).toThrow(/engines\.b: .*absolute/)
  })

  it('lets a policy use `default` only, unless its `engines` globs say more', () => {
    expect(DEFAULT_POLICY.engines).toEqual(['default'])
    expect(mayUseEngine(DEFAULT_POLICY, 'default')).toBe(true)
    expect(mayUseEngine(DEFAULT_POLICY, 'b')).toBe(false)
    const policy = PolicySchema.parse({ engines: ['edge-*', 'b'] })
    expect(['edge-1', 'b', 'default', 'bb'].map((n) => mayUseEngine(policy, n))).toEqual([
      true,
      true,
      false,
      false,
    ])
    expect(() => PolicySchema.parse({ engines: ['B/../x'] })).toThrow()
  })
})
