/**
 * @module Node-only: reads the config file, and creates it with a first admin token when there is none.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { generateToken, hashToken } from '../auth/tokens.ts'
import { type ConfigFile, parseConfigFile } from '../config.ts'

export const DEFAULT_CONFIG_PATH = 'dockgate.config.json'

export interface LoadedConfig {
  config: ConfigFile
  /** Set only when this start created the first admin token: print it once, never store it. */
  createdToken?: string
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
