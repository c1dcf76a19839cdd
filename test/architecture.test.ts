/**
 * The layers of `src/` as README's "Architecture" section states them: a part (a folder of
 * `src/`, or a file at its root) imports only parts of lower layers, so no loop between parts
 * can appear. A short script rather than a tool such as dependency-cruiser: TypeScript's own
 * `preProcessFile` already lists a file's imports (static, `export … from`, dynamic), and the
 * rest is forty lines that need no new dependency.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { filesUnder } from './support/files.ts'

const ROOT = resolve(import.meta.dirname, '..')
const SRC = join(ROOT, 'src')

/** `routes/` for a file under a folder of `src/`, `app.ts` for a file at its root. */
function partOf(file: string): string | undefined {
  const path = relative(SRC, file)
  if (path.startsWith('..')) return undefined
  const [first, ...rest] = path.split(sep)
  return rest.length > 0 ? `${first}/` : first
}

const sourceFiles = (dir: string) => filesUnder(dir, (name) => /\.(?:ts|js)$/.test(name))

interface Edge {
  file: string
  from: string
  to: string
}

/** What a file imports (static, `export … from`, dynamic), as written. */
const importsOf = (file: string) =>
  ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName)

/** Every import of one part by another, from the files' own import statements. */
function importsBetweenParts(): Edge[] {
  return sourceFiles(SRC).flatMap((file) => {
    return importsOf(file)
      .filter((fileName) => fileName.startsWith('.'))
      .map((fileName) => ({
        file: relative(SRC, file),
        from: partOf(file)!,
        to: partOf(resolve(dirname(file), fileName)),
      }))
      .filter((edge): edge is Edge => edge.to !== undefined && edge.to !== edge.from)
  })
}

/** README's numbered layers, bottom first: the backquoted parts before each item's colon. */
function layersFromReadme(): string[][] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.split(/^## Architecture$/m)[1]?.split(/^## /m)[0] ?? ''
  return [...section.matchAll(/^\d+\.\s+((?:`[^`]+`,?\s*)+):/gm)].map(([, parts]) =>
    [...parts!.matchAll(/`([^`]+)`/g)].map(([, part]) => part!),
  )
}

/** One loop between parts, as the path around it, or undefined when there is none. */
function findLoop(edges: Edge[]): string[] | undefined {
  const next = new Map<string, Set<string>>()
  for (const { from, to } of edges) next.set(from, (next.get(from) ?? new Set()).add(to))
  const done = new Set<string>()
  const visit = (part: string, path: string[]): string[] | undefined => {
    if (path.includes(part)) return [...path.slice(path.indexOf(part)), part]
    if (done.has(part)) return undefined
    for (const to of next.get(part) ?? []) {
      const loop = visit(to, [...path, part])
      if (loop) return loop
    }
    done.add(part)
    return undefined
  }
  for (const part of next.keys()) {
    const loop = visit(part, [])
    if (loop) return loop
  }
  return undefined
}

describe('the layers of src/', () => {
  const edges = importsBetweenParts()
  const layers = layersFromReadme()
  const layerOf = new Map(layers.flatMap((parts, at) => parts.map((part) => [part, at + 1])))

  it('are read from the README', () => {
    expect(edges.length).toBeGreaterThan(50)
    expect(layers.length).toBeGreaterThan(5)
  })

  it('name every part of src/ once, and no part that is not there', () => {
    const parts = [...new Set(sourceFiles(SRC).map((file) => partOf(file)!))].sort()
    expect(layers.flat().sort()).toEqual(parts)
  })

  it('have no loop between parts', () => {
    expect(findLoop(edges)).toBeUndefined()
  })

  it('keep the domain free of Hono: its rules hold whatever serves them', () => {
    const hono = sourceFiles(join(SRC, 'domain')).flatMap((file) =>
      importsOf(file)
        .filter((name) => /^(?:hono|@hono\/)/.test(name))
        .map((name) => `${relative(SRC, file)} imports ${name}`),
    )
    expect(hono).toEqual([])
  })

  it('let each part import only parts of the layers below it', () => {
    const upward = edges
      .filter(({ from, to }) => layerOf.get(to)! >= layerOf.get(from)!)
      .map(
        ({ file, to, from }) =>
          `${file} (layer ${layerOf.get(from)}) imports ${to} (layer ${layerOf.get(to)})`,
      )
    expect([...new Set(upward)]).toEqual([])
  })
})
