import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Restarts the engine: run alone by scripts/test.sh (vitest.restart.config.ts).
    exclude: ['test/engine-restart/**', '**/node_modules/**'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores: test files that start containers compete for them.
    maxWorkers: 2,
  },
})
