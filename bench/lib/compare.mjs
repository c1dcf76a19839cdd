/**
 * `--compare=REF`: another commit's gateway, built from a copy of that commit's tree (`git
 * archive` into a temporary directory, `node_modules` a symlink to this checkout's, `npm run
 * build` there), so that the bench runs it beside this tree's in the same run.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './processes.mjs'
import { log } from './util.mjs'

/** Resolves `ref` to a commit and builds it; answers the variant, with `remove()` for the way out. */
export function buildCompareVariant(ref) {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim()
  const root = mkdtempSync(join(tmpdir(), 'dockgate-bench-ref-'))
  const remove = () => rmSync(root, { recursive: true, force: true })
  try {
    log(`compare: building ${ref} (${sha.slice(0, 10)}) in ${root}`)
    execFileSync('bash', ['-c', 'git archive --format=tar "$1" | tar -x -C "$2"', '_', sha, root], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(root, 'node_modules'))
    execFileSync('npm', ['run', '-s', 'build'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    // Its edge bundle too, for workerd's cold start (a commit without one fails that row alone).
    if (existsSync(join(root, 'scripts/build-edge.mjs'))) {
      execFileSync(process.execPath, ['scripts/build-edge.mjs'], {
        cwd: root,
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    }
  } catch (error) {
    remove()
    throw new Error(`--compare=${ref}: could not build it: ${error.message}`)
  }
  return {
    key: ref,
    label: `${ref} (${sha.slice(0, 10)})`,
    sha,
    root,
    entry: join(root, 'dist/dockgate.mjs'),
    dist: join(root, 'dist'),
    remove,
  }
}
