/**
 * @module Node-only: reads the config file, and creates it with a first admin token when there is none.
 */
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { JSONWebKeySet } from 'jose'
import { generateToken, hashToken } from '../auth/tokens.ts'
import { type ConfigFile, parseConfigFile } from '../config.ts'

export const DEFAULT_CONFIG_PATH = 'dockgate.config.json'

export interface LoadedConfig {
  config: ConfigFile
  /** Set only when this start created the first admin token: print it once, never store it. */
  createdToken?: string
}

/** Reads and checks the config file; a missing file is an empty config. */
export function loadConfig(path: string): ConfigFile {
  return parseConfigFile(existsSync(path) ? readFileSync(path, 'utf8') : '{}', path)
}

/**
 * Loads the config. When no token exists anywhere (file or `DOCKGATE_TOKEN`), writes a file with
 * one admin token's hash (mode 0600) and returns the token itself so it can be shown once.
 */
export async function loadOrCreateConfig(
  path: string,
  hasEnvToken: boolean,
): Promise<LoadedConfig> {
  const config = existsSync(path)
    ? parseConfigFile(readFileSync(path, 'utf8'), path)
    : parseConfigFile('{}', path)
  if (config.tokens.length > 0 || hasEnvToken) return { config }
  const token = generateToken()
  const withAdmin: ConfigFile = {
    ...config,
    tokens: [{ name: 'admin', hash: await hashToken(token), scopes: ['admin'] }],
  }
  writeFileSync(path, `${JSON.stringify(withAdmin, null, 2)}\n`, { mode: 0o600 })
  return { config: withAdmin, createdToken: token }
}

/** The JWKS named by `jwt.jwksFile`, resolved next to the config file. */
export function readJwks(config: ConfigFile, configPath: string): JSONWebKeySet | undefined {
  const file = config.jwt?.jwksFile
  if (!file) return undefined
  const parsed: unknown = JSON.parse(readFileSync(resolve(dirname(configPath), file), 'utf8'))
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    !Array.isArray((parsed as { keys?: unknown }).keys)
  ) {
    throw new Error(`Cannot use ${file}: not a JWKS document`)
  }
  return parsed as JSONWebKeySet
}

/**
 * Calls `reload` on SIGHUP and when the config file changes (debounced: editors write in steps).
 * Returns a function that stops watching.
 */
export function watchConfig(path: string, reload: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  const soon = () => {
    clearTimeout(timer)
    timer = setTimeout(reload, 100)
  }
  process.on('SIGHUP', reload)
  // Watch the folder: editors and `mv` replace the file, which ends a watch on the file itself.
  const watcher = watch(dirname(resolve(path)), (_event, name) => {
    if (name && resolve(dirname(resolve(path)), name) === resolve(path)) soon()
  })
  return () => {
    clearTimeout(timer)
    watcher.close()
    process.off('SIGHUP', reload)
  }
}
