// A Node built-in module loaded when one of its members is first read, for bundled modules that
// `require` it when they are evaluated but use it only on paths the gateway never or rarely takes.
// scripts/build-node.mjs (ON_DEMAND) points such imports here: `ws`'s `tls` and `https`, which it
// uses only as a WebSocket *client* of a `wss://` URL (`https.request`, `tls.connect`), while the
// gateway only accepts upgrades on its own HTTP/1.1 server. Loading both at start cost ~3 ms of a
// start's CPU (bench `cold`, issue #17; bench/README.md, "Cold start, third session").
// test/node/on-demand.test.ts checks that the members are Node's, and that reading none loads none.
'use strict'

/** Node's module `name` (`node:tls`): every member read from it, loaded on the first read. */
function onDemand(name) {
  return new Proxy(
    {},
    {
      get: (_, member) => process.getBuiltinModule(name)[member],
      has: (_, member) => member in process.getBuiltinModule(name),
      ownKeys: () => Reflect.ownKeys(process.getBuiltinModule(name)),
      getOwnPropertyDescriptor: (_, member) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(process.getBuiltinModule(name), member)
        // A proxy may not report a member its (empty) target lacks as non-configurable.
        return descriptor && { ...descriptor, configurable: true }
      },
    },
  )
}

module.exports = { onDemand }
