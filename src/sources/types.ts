import type { Transport } from '../transport/index.js';
import type { InputSpec, SamplePrediction, SampleInput } from '../contracts/index.js';

/** One record of a source: a sample to embed (or an embedding), with its label where the data has one. */
export interface SourceRecord {
  readonly id: string;
  readonly input: SampleInput;
  /** As given in the data: numbers become their decimal string; absent = unlabelled. */
  readonly label?: string;
  readonly meta?: Readonly<Record<string, unknown>>;
  /** The downstream model's prediction for this record (the wire format's `prediction`), for build-index's combination with the model's signals. */
  readonly prediction?: SamplePrediction;
  /** Where it came from, for error messages: "refs.jsonl:17", "topic t/0@42", "fashion-mnist/train#3". */
  readonly where: string;
}

/** Records skipped under `skipInvalid`, by reason (an error code or a label rule), with the first few locations. */
export interface SkipReport {
  readonly total: number;
  readonly byReason: Readonly<Record<string, { readonly count: number; readonly first: readonly string[] }>>;
}

/** A stream of records: a file, stdin, a topic or a built-in data set. */
export interface Source {
  /** e.g. "refs.jsonl", "topic:NAME", "builtin:fashion-mnist/train". */
  readonly name: string;
  /** Declared label order (built-ins); file sources leave it undefined and the order is derived (labelOrder). */
  readonly labelNames?: readonly string[];
  /** The records in order, read as they are consumed (never the whole file at once). */
  records(signal?: AbortSignal): AsyncIterable<SourceRecord>;
  /** After iteration: records skipped with skipInvalid, by reason, with the first few locations. */
  readonly skipped: SkipReport;
}

export interface SourceOptions {
  /** What the model accepts (the same rules as the worker's parseSample). */
  readonly spec: InputSpec;
  /** Count and skip bad records instead of failing on the first. */
  readonly skipInvalid: boolean;
  /** Values per row of a raw `.f32` file. */
  readonly dim?: number;
  /** Ids and labels of a `.npy`/`.f32` file: JSONL `{id, label?, meta?}` or CSV with a header `id[,label]`. */
  readonly sidecar?: string;
  /** Needed by `topic:NAME`. */
  readonly transport?: Transport;
  /** Longest JSONL line accepted, in bytes (default: spec.maxBytes). */
  readonly maxLineBytes?: number;
}
