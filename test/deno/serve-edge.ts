/**
 * Serves the edge bundle (dist/edge.js) with Deno, as Deno Deploy would: its `fetch` handler
 * with bindings from the environment. Used by test/runtimes to prove the bundle works.
 */
import handler from '../../dist/edge.js'

const port = Number(Deno.env.get('PORT') ?? 8787)
const bindings = {
  DOCKER_HOST: Deno.env.get('DOCKER_HOST'),
  DOCKGATE_TOKEN: Deno.env.get('DOCKGATE_TOKEN'),
  DOCKGATE_CONFIG_JSON: Deno.env.get('DOCKGATE_CONFIG_JSON'),
}
Deno.serve({ port, hostname: '127.0.0.1', onListen: () => console.log('"listening"') }, (request) =>
  handler.fetch(request, bindings),
)
