// Types of scripts/fresh-build.mjs, for the tests that import it.
export function isFresh(root: string, record: string): boolean
export function recordBuild(record: string, inputs: readonly string[], began: Date): void
