export type { Embedder } from './embedder.js';
export { reviewRecord, scoreRecord, type RecordParts } from './records.js';
export { Scorer, type Embedded, type EncodeStage, type Encoded, type Found, type SearchStage, type RejectedSample, type ScoreItem, type Scored, type ScoredSample, type ScorerOptions, type StageTimers } from './scorer.js';
export { CSV_COLUMNS, CSV_RECORD_COLUMNS, csvField, csvHeader, csvRow } from './csv.js';
