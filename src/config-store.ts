/**
 * @module Loading the config file, and creating it with a first admin token when there is none.
 *
 * Runtime-free: each entry point hands in its own way of reading and writing files.
 */
import type { JSONWebKeySet } from 'jose'
import { generateToken, hashToken } from './auth/tokens.ts'
import { type ConfigFile, parseConfigFile } from './config.ts'

export const DEFAULT_CONFIG_PATH = 'dockgate.config.json'

export interface ConfigFiles {
  /** The file's text, or undefined when it does not exist. */
  read(path: string): string | undefined
  /** Writes the file readable by its owner only (mode 0600). */
  writePrivate(path: string, text: string): void
}

export interface LoadedConfig {
  config: ConfigFile
  /** Set only when this start created the first admin token: print it once, never store it. */
  createdToken?: string
}

/** Reads and checks the config file; a missing file is an empty config. */
export function loadConfig(files: ConfigFiles, path: string): ConfigFile {
  return parseConfigFile(files.read(path) ?? '{}', path)
}

/**
 * Loads the config. When there is no credential at all (no token in the file, no
 * `DOCKGATE_TOKEN`, no JWT secret), writes the file with one admin token's hash and returns the
 * token itself so it can be shown once.
 */
export async function loadOrCreateConfig(
  files: ConfigFiles,
  path: string,
  hasOtherCredential: boolean,
): Promise<LoadedConfig> {
  const config = loadConfig(files, path)
  if (config.tokens.length > 0 || hasOtherCredential) return { config }
  const token = generateToken()
  const withAdmin: ConfigFile = {
    ...config,
    tokens: [{ name: 'admin', hash: await hashToken(token), scopes: ['admin'] }],
  }
  files.writePrivate(path, `${JSON.stringify(withAdmin, null, 2)}\n`)
  return { config: withAdmin, createdToken: token }
}

/** The JWKS named by `jwt.jwksFile`, resolved next to the config file. */
export function readJwks(
  files: ConfigFiles,
  config: ConfigFile,
  configPath: string,
): JSONWebKeySet | undefined {
  const file = config.jwt?.jwksFile
  if (!file) return undefined
  const path = file.startsWith('/') ? file : `${configPath.replace(/[^/]*$/, '')}${file}`
  const text = files.read(path)
  const parsed: unknown = text === undefined ? undefined : JSON.parse(text)
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    !Array.isArray((parsed as { keys?: unknown }).keys)
  ) {
    throw new Error(`Cannot use ${file}: not a JWKS document`)
  }
  return parsed as JSONWebKeySet
}
