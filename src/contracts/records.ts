import type { ErrorCode } from '../errors.js';
import type { SignalsWire } from '../signals.js';

/** Where a record came from: the input message's coordinates. */
export interface SourceRef {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Where an offline record came from (`qualm score`): the input file as named on the command
 * line (`-` for stdin) and the 1-based line number of a line file (JSONL), or the 0-based row
 * of a row file (.npy, .f32, .parquet).
 */
export type FileRef = { file: string; line: number } | { file: string; row: number };

/** The source of a score or review record: Kafka coordinates, a file line, or null when unknown. */
export type RecordSource = SourceRef | FileRef | null;

export interface NeighborRecord {
  ref_id: string;
  /** Cosine distance (1 - cosine similarity), in [0, 2]. */
  distance: number;
  label: string | null;
}

/**
 * The individual signals behind an uncertainty, all reported to the reviewer: one key per row
 * of the signal table (src/signals.ts, with each one's meaning), in its order.
 */
export type SignalsRecord = SignalsWire;

/** Why a sample went to review, as the review record states it. */
export const FLAG_REASONS = ['out_of_distribution', 'distribution_shift', 'ambiguous_neighborhood', 'low_density', 'low_predicted_accuracy'] as const;
/** The rules that can flag a sample (see scoring/policy.ts). */
export const FLAG_RULES = ['beyond_references', 'shifted_window', 'threshold', 'target_rate', 'min_predicted_accuracy'] as const;
export type FlagRule = (typeof FLAG_RULES)[number];
export type FlagReason = (typeof FLAG_REASONS)[number];

/**
 * The embedding a review record carries, so that a reviewed item can become a reference of
 * the next bundle without running the encoder again (see LabelRecord and build-index).
 */
export interface ReviewEmbedding {
  /** sha256 of the ONNX model that produced it; a bundle only takes embeddings of its own model. */
  model_sha256: string;
  dim: number;
  /** Little-endian float32 values, base64. */
  b64: string;
}

/** Published to the review topic for every flagged sample (`S`: its source; Kafka coordinates on the topic). */
export interface ReviewRecord<S extends RecordSource = SourceRef> {
  id: string;
  meta: Readonly<Record<string, unknown>> | null;
  uncertainty: number;
  /** Estimated chance that a downstream classifier gets this sample right. */
  predicted_accuracy: number | null;
  signals: SignalsRecord;
  neighbors: NeighborRecord[];
  suggested_label: string | null;
  reason: FlagReason;
  /** The rule that flagged it. */
  rule: FlagRule;
  /** One sentence a reviewer can read without knowing the method. */
  explanation: string;
  flag_policy: string;
  index_version: string;
  model_version: string;
  scored_at: string;
  source: S;
  embedding: ReviewEmbedding;
}

/** Published to the scores topic (when configured) for every scored sample (`S`: its source; Kafka coordinates on the topic). */
export interface ScoreRecord<S extends RecordSource = SourceRef> {
  id: string;
  meta: Readonly<Record<string, unknown>> | null;
  uncertainty: number;
  predicted_accuracy: number | null;
  flagged: boolean;
  reason: FlagReason | null;
  rule: FlagRule | null;
  signals: SignalsRecord;
  suggested_label: string | null;
  index_version: string;
  model_version: string;
  scored_at: string;
  source: S;
}

/** Kafka headers on a DLQ record; the value and key are the original bytes. */
export const DLQ_HEADERS = {
  code: 'qualm-error-code',
  message: 'qualm-error-message',
  topic: 'qualm-source-topic',
  partition: 'qualm-source-partition',
  offset: 'qualm-source-offset',
  failedAt: 'qualm-failed-at',
} as const;

export interface DlqInfo {
  code: ErrorCode;
  message: string;
  source: SourceRef;
  failedAt: string;
}

export function dlqHeaders(info: DlqInfo): Record<string, string> {
  return {
    [DLQ_HEADERS.code]: info.code,
    [DLQ_HEADERS.message]: info.message,
    [DLQ_HEADERS.topic]: info.source.topic,
    [DLQ_HEADERS.partition]: String(info.source.partition),
    [DLQ_HEADERS.offset]: info.source.offset,
    [DLQ_HEADERS.failedAt]: info.failedAt,
  };
}

/**
 * Header of a DLQ record whose copy of the original value was cut to fit QUALM_MAX_DLQ_BYTES:
 * the original value's length in bytes. The source headers name where the whole original is.
 */
export const DLQ_TRUNCATED_HEADER = 'qualm-dlq-truncated';

/** What a DLQ record copies of the message that failed. */
export interface DlqOriginal {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, unknown>> | undefined;
}

const headerBytes = (headers: Readonly<Record<string, unknown>>): number => {
  let n = 0;
  for (const [k, v] of Object.entries(headers)) n += Buffer.byteLength(k) + (Buffer.isBuffer(v) ? v.length : typeof v === 'string' ? Buffer.byteLength(v) : 0);
  return n;
};

/**
 * The DLQ record of a failed message: its key, value and headers byte for byte, plus the DLQ
 * headers. When key, value and headers together pass `maxBytes`, the value is cut to what
 * fits and DLQ_TRUNCATED_HEADER gives its original length, so that the record is never larger
 * than the DLQ topic takes (a refused DLQ write would stop the partition).
 */
export function dlqRecord(original: DlqOriginal, info: DlqInfo, maxBytes: number): { key: Buffer | null; value: Buffer | null; headers: Record<string, unknown> } {
  const headers: Record<string, unknown> = { ...(original.headers ?? {}), ...dlqHeaders(info) };
  const value = original.value;
  const fixed = (original.key?.length ?? 0) + headerBytes(headers);
  if (value === null || fixed + value.length <= maxBytes) return { key: original.key, value, headers };
  headers[DLQ_TRUNCATED_HEADER] = String(value.length);
  const room = Math.max(0, maxBytes - fixed - Buffer.byteLength(DLQ_TRUNCATED_HEADER) - String(value.length).length);
  return { key: original.key, value: value.subarray(0, room), headers };
}

/** Reads the DLQ headers back (for tools and tests); undefined when any is missing. */
export function readDlqHeaders(headers: Readonly<Record<string, unknown>> | undefined): DlqInfo | undefined {
  if (headers === undefined) return undefined;
  const get = (name: string): string | undefined => {
    const v = headers[name];
    if (Buffer.isBuffer(v)) return v.toString('utf8');
    return typeof v === 'string' ? v : undefined;
  };
  const code = get(DLQ_HEADERS.code);
  const message = get(DLQ_HEADERS.message);
  const topic = get(DLQ_HEADERS.topic);
  const partition = get(DLQ_HEADERS.partition);
  const offset = get(DLQ_HEADERS.offset);
  const failedAt = get(DLQ_HEADERS.failedAt);
  if (code === undefined || message === undefined || topic === undefined || partition === undefined || offset === undefined || failedAt === undefined) {
    return undefined;
  }
  return { code: code as ErrorCode, message, source: { topic, partition: Number(partition), offset }, failedAt };
}
