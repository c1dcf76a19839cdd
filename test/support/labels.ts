/**
 * Every container a test creates carries `dockgate-test=<run id>`, so a run removes exactly
 * what it created, even while another run (another checkout, a helper) uses the same engine.
 */
export const TEST_LABEL = 'dockgate-test'
export const TEST_RUN = process.env.DOCKGATE_TEST_RUN ?? 'manual'
