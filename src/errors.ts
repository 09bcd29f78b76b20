/**
 * Every failure qualm reports carries a stable code, a retriable flag and context.
 * Retry and routing decisions read `code` and `retriable`, never the message text.
 */
export const ErrorCodes = {
  /** A configuration value is missing or has the wrong form. */
  CONFIG_INVALID: 'QUALM_CONFIG_INVALID',
  /** The message value is not valid UTF-8 JSON. */
  BAD_JSON: 'QUALM_BAD_JSON',
  /** The message has neither an `id` nor a Kafka key. */
  MISSING_ID: 'QUALM_MISSING_ID',
  /** The message is JSON but not a sample object (wrong shape or types). */
  BAD_SCHEMA: 'QUALM_BAD_SCHEMA',
  /** The input kind is not the one the model manifest accepts. */
  UNSUPPORTED_INPUT: 'QUALM_UNSUPPORTED_INPUT',
  /** The feature vector has the wrong number of values. */
  WRONG_LENGTH: 'QUALM_WRONG_LENGTH',
  /** The feature vector holds NaN or an infinity. */
  NON_FINITE: 'QUALM_NON_FINITE',
  /** A feature value lies outside the value range the model manifest declares (`value_range`: raw pixels 0..255 sent to a model that takes [0, 1], say). */
  OUT_OF_RANGE: 'QUALM_OUT_OF_RANGE',
  /** The message value exceeds the configured maximum size. */
  OVERSIZE: 'QUALM_OVERSIZE',
  /** The message has no value at all (a tombstone). */
  EMPTY: 'QUALM_EMPTY',
  /** A text input is empty or only whitespace. */
  EMPTY_TEXT: 'QUALM_EMPTY_TEXT',
  /** A text input is longer than the text limit (contracts' MAX_TEXT_BYTES). */
  TEXT_TOO_LONG: 'QUALM_TEXT_TOO_LONG',
  /** The qualm-input-format header holds neither `json` nor `image`. */
  BAD_INPUT_FORMAT: 'QUALM_BAD_INPUT_FORMAT',
  /** An image input is not a decodable image: random bytes, truncated or corrupt data. */
  IMAGE_UNDECODABLE: 'QUALM_IMAGE_UNDECODABLE',
  /** An image input is in a format other than PNG, JPEG or WebP (GIF, TIFF, SVG, BMP, HEIF, ...). */
  IMAGE_UNSUPPORTED_FORMAT: 'QUALM_IMAGE_UNSUPPORTED_FORMAT',
  /** An image input has more pixels than the manifest's preprocess.max_pixels (checked before decoding). */
  IMAGE_TOO_LARGE: 'QUALM_IMAGE_TOO_LARGE',
  /** An image does not have the model's input size after the manifest's resize and crop. */
  IMAGE_BAD_SIZE: 'QUALM_IMAGE_BAD_SIZE',
  /** An `embedding` input is all zeros, which has no direction under the cosine metric. */
  ZERO_EMBEDDING: 'QUALM_ZERO_EMBEDDING',
  /** The input's `prediction` (the downstream model's probabilities, logits or label and confidence) is malformed. */
  BAD_PREDICTION: 'QUALM_BAD_PREDICTION',
  /** The sample's `meta` is nested deeper than QUALM_MAX_META_DEPTH. */
  META_TOO_DEEP: 'QUALM_META_TOO_DEEP',
  /** The sample's `meta` is larger than QUALM_MAX_META_BYTES as JSON. */
  META_TOO_LARGE: 'QUALM_META_TOO_LARGE',
  /** The sample's score or review record cannot be written as JSON (it goes to the DLQ; the batch goes on). */
  RECORD_UNSERIALIZABLE: 'QUALM_RECORD_UNSERIALIZABLE',
  /** A reference bundle failed verification. */
  BUNDLE_INVALID: 'QUALM_BUNDLE_INVALID',
  /** No live bundle is available. */
  BUNDLE_MISSING: 'QUALM_BUNDLE_MISSING',
  /** A bundle store could not be reached or did not serve a file (network error, HTTP status). */
  BUNDLE_DOWNLOAD_FAILED: 'QUALM_BUNDLE_DOWNLOAD_FAILED',
  /** The encoder model or its manifest is unusable. */
  MODEL_INVALID: 'QUALM_MODEL_INVALID',
  /** The encoder failed at inference time. */
  INFERENCE_FAILED: 'QUALM_INFERENCE_FAILED',
  /** A dataset file is missing or malformed. */
  DATASET_INVALID: 'QUALM_DATASET_INVALID',
  /** A downstream model's predictions file (qualm evaluate --predictions) is malformed or does not match the test set. */
  PREDICTIONS_INVALID: 'QUALM_PREDICTIONS_INVALID',
  /** A reference or sample source (JSONL, .npy/.f32, sidecar, Parquet, topic) holds a bad record or header. */
  SOURCE_INVALID: 'QUALM_SOURCE_INVALID',
  /** The Kafka broker refused the SASL credentials (or mechanism) at start. */
  KAFKA_AUTH_FAILED: 'QUALM_KAFKA_AUTH_FAILED',
  /** The TLS handshake with the Kafka broker failed at start: an untrusted broker certificate, or a client certificate refused. */
  KAFKA_TLS_FAILED: 'QUALM_KAFKA_TLS_FAILED',
  /** An operation was cancelled through its AbortSignal. */
  ABORTED: 'QUALM_ABORTED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Context fields that help an operator find the failing thing. */
export interface ErrorContext {
  topic?: string;
  partition?: number;
  offset?: string;
  bundleVersion?: string;
  configKey?: string;
  path?: string;
  url?: string;
}

export interface QualmErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  context?: ErrorContext;
}

export class QualmError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, options: QualmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QualmError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }
}

/** One configuration problem: the key as the user wrote it and what was expected. */
export interface ConfigProblem {
  key: string;
  message: string;
}

export class ConfigError extends QualmError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], code: ErrorCode = ErrorCodes.CONFIG_INVALID) {
    const lines = problems.map((p) => `  ${p.key}: ${p.message}`);
    super(code, `invalid configuration:\n${lines.join('\n')}`, {
      context: problems[0] === undefined ? {} : { configKey: problems[0].key },
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isQualmError(err: unknown): err is QualmError {
  return err instanceof QualmError;
}

/** A readable one-line message for any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
