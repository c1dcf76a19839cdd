/** Files of the tree, for the tests that read the sources themselves. */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Every file under `dir` whose name `matches`, depth first in directory order. */
export function filesUnder(dir: string, matches: (name: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path, matches)
    return matches(entry.name) ? [path] : []
  })
}
