/**
 * @module Per-principal request rate and concurrent stream limits: the in-process token buckets
 * and slots live with the memory state store, which keeps them for one gateway process.
 */
export { type RateLimitOptions, StreamSlots, TokenBuckets } from '../store/memory-limits.ts'
