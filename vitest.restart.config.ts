import { defineConfig } from 'vitest/config'

/**
 * The engine-restart suite stops and starts an engine under the gateway: a second private
 * engine of its own (its own state folder, socket and ports), so nothing else that uses the
 * project's engine is disturbed. The suite stops that engine when it is done.
 */
process.env.DOCKGATE_STATE_DIR ??= new URL('./.state/restart-suite', import.meta.url).pathname
delete process.env.DOCKER_HOST

export default defineConfig({
  test: {
    include: ['test/engine-restart/**/*.test.ts'],
    globalSetup: ['test/engine-restart/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
})
