/** Every container a test creates carries this label, so a run can always clean up after itself. */
export const TEST_LABEL = 'dockgate-test'
