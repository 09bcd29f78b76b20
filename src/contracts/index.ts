export {
  parseSample,
  MAX_TEXT_BYTES,
  INPUT_ERROR_CODES,
  decodeFloat32Base64,
  encodeFloat32Base64,
  type InputSpec,
  type Sample,
  type SampleInput,
  type ParseResult,
} from './sample.js';
export {
  DLQ_HEADERS,
  FLAG_REASONS,
  FLAG_RULES,
  dlqHeaders,
  readDlqHeaders,
  type DlqInfo,
  type FlagReason,
  type FlagRule,
  type NeighborRecord,
  type ReviewEmbedding,
  type ReviewRecord,
  type ScoreRecord,
  type SignalsRecord,
  type SourceRef,
} from './records.js';
export { parseLabelRecord, type LabelParseResult, type LabelRecord } from './labels.js';
