// `node:assert` for the bundled undici, which requires it in nine modules as it is evaluated and
// calls it only as `assert(value)` (no member of it: checked by test/node/assert-on-demand.test.ts
// against the pinned undici): Node's module is loaded the first time such a check fails, and
// throws as it would have. Loading it at start (with its AssertionError, its error-message and
// colour helpers) costs ~14 M instructions under callgrind (`node -e` of `require('assert')`
// alone: 100.9 against 86.9 M; bench/README.md, "Cold start, fourth session").
'use strict'

/** What `assert(value, message)` does when `value` is truthy: nothing; otherwise Node's own. */
function assert(value, message) {
  if (!value) process.getBuiltinModule('node:assert')(value, message)
}

module.exports = assert
