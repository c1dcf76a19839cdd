// Whether a build's output is still what its inputs would make: a record beside the output lists
// the files the build read (one a line, from the repository's root) and carries, as its own
// time, when that build began. The output is fresh while the record is there and none of its
// files is newer than it (or gone). `npm start` skips the Node build that way: it took about
// 6 s a start (scripts/build-node.mjs --if-stale).
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Whether the output recorded in `record` (a path) was built from its inputs as they are now. */
export function isFresh(root, record) {
  if (!existsSync(record)) return false
  const builtAt = statSync(record).mtimeMs
  const inputs = readFileSync(record, 'utf8').split('\n').filter(Boolean)
  if (inputs.length === 0) return false
  return inputs.every((input) => {
    const path = join(root, input)
    return existsSync(path) && statSync(path).mtimeMs <= builtAt
  })
}

/** Writes the record of a build that began at `began` (a Date) and read `inputs`. */
export function recordBuild(record, inputs, began) {
  writeFileSync(record, `${[...new Set(inputs)].join('\n')}\n`)
  utimesSync(record, began, began)
}
