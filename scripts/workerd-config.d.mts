// Types of scripts/workerd-config.mjs, for the tests that import it.
export declare const ROOT: string
export declare const WORKERD: string
export declare const EDGE_BUNDLE: string
export declare const EDGE_ASSETS: string
export declare const EDGE_DIRECTORIES: Record<string, string>
export declare const COMPATIBILITY_DATE: string
export declare const CONFIG_NAME: string

export interface WorkerdConfigOptions {
  /** The ES module the worker runs (the edge bundle, or a minimal worker). */
  modulePath: string
  /** Where the config goes; the module is embedded by a path relative to it. */
  configPath: string
  /** The HTTP socket's port on 127.0.0.1. */
  port: number
  /** Text bindings, the worker's `env`; undefined values are left out. */
  bindings?: Record<string, string | undefined>
  /** Read-only directories, each a disk service bound under its name (a `Fetcher` in `env`). */
  directories?: Record<string, string>
  /** What the worker's global fetch may reach (default `['local']`). */
  allow?: string[]
  compatibilityDate?: string
  compatibilityFlags?: string[]
}

export declare function capnpString(value: string): string
export declare function workerdConfigText(options: WorkerdConfigOptions): string
export declare function writeWorkerdConfig(options: WorkerdConfigOptions): string
export declare function workerdCommand(configPath: string): { file: string; args: string[] }
