/**
 * @module Web-stream stages for Docker log bodies: bytes → frames → lines.
 */

export { concatBytes, DemuxStream, type LogFrame, type LogStreamName } from './demux.ts'
export { type LogLine, LogLineStream, type LogLineStreamOptions, LogStreamError } from './lines.ts'
export {
  type ChunkEncoder,
  LogEventEncoder,
  type LogEventEncoderOptions,
  pumpLogEvents,
} from './log-events.ts'
export {
  extractIntegerField,
  type NdjsonRecord,
  NdjsonStream,
  type NdjsonStreamOptions,
} from './ndjson.ts'
export { RawLogStream } from './raw.ts'
export { type ServiceLineSink, ServiceLogEventEncoder, ServiceLogSplitter } from './service-logs.ts'
export { encodeSse, type SseMessage } from './sse.ts'
export {
  isTimestampPrefix,
  PARTIAL_MESSAGE_BYTES,
  readTimestampPrefix,
  TIMESTAMP_PREFIX_BYTES,
} from './timestamp.ts'
