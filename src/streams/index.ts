/**
 * @module Web-stream stages for Docker log bodies: bytes → frames → lines.
 */

export { DemuxStream, type LogFrame, type LogStreamName } from './demux.ts'
export { type LogLine, LogLineStream, type LogLineStreamOptions, LogStreamError } from './lines.ts'
export { RawLogStream } from './raw.ts'
export {
  isTimestampPrefix,
  PARTIAL_MESSAGE_BYTES,
  readTimestampPrefix,
  TIMESTAMP_PREFIX_BYTES,
} from './timestamp.ts'
