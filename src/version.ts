/** The gateway's own version, reported by `/v1/system/version` and the OpenAPI document. */
export const GATEWAY_VERSION = '0.1.0'
