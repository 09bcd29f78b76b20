import { endianness } from 'node:os';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import { parsePrediction, type SamplePrediction } from './prediction.js';

/**
 * Longest `input.text` accepted, in UTF-8 bytes (64 KiB). A text model reads only its first
 * max_tokens tokens (256 for all-MiniLM-L6-v2: about 1 KiB of English), so a longer text is
 * almost all ignored, and tokenizing it would still cost time on the inference thread; the
 * longest IMDB review is 13.7 KB. QUALM_MAX_MESSAGE_BYTES bounds the whole message first.
 */
export const MAX_TEXT_BYTES = 65_536;

/**
 * Deepest `meta` accepted (default of QUALM_MAX_META_DEPTH): `meta` itself is level 1. Records
 * carry meta through untouched, and a value nested thousands of levels deep overflows the
 * stack of the JSON.stringify that writes them, which would fail the whole batch.
 */
export const MAX_META_DEPTH = 32;
/** Largest `meta` accepted, as JSON in UTF-8 bytes (default of QUALM_MAX_META_BYTES): it is copied into every record. */
export const MAX_META_BYTES = 16_384;

/** The meta limits of every input spec (MAX_META_DEPTH and MAX_META_BYTES when absent), and the bundle's metric. */
export interface MetaLimits {
  readonly maxMetaDepth?: number;
  readonly maxMetaBytes?: number;
  /** The distance embeddings are compared by; under cosine an all-zero `embedding` input has no direction and is refused. */
  readonly metric?: 'cosine' | 'l2' | 'ip';
}

/** What the model accepts, as far as parsing is concerned. */
export type InputSpec = MetaLimits &
  (
  | {
      /** Input kind of the model manifest; `embedding` inputs are always accepted too. */
      readonly inputKind: 'features';
      /** Number of feature values the encoder expects. */
      readonly inputDim: number;
      /** The closed interval every feature value must lie in (the manifest's `value_range`); absent: any finite value. */
      readonly valueRange?: ValueRange;
      /** Dimension of the embedding space (for `embedding` inputs). */
      readonly embeddingDim: number;
      /** Larger values are rejected as oversize. */
      readonly maxBytes: number;
    }
  | {
      /** A text model: `input.text` strings (and `embedding` inputs). */
      readonly inputKind: 'text';
      readonly embeddingDim: number;
      readonly maxBytes: number;
      /** Longer texts (UTF-8 bytes) are rejected (default MAX_TEXT_BYTES). */
      readonly maxTextBytes?: number;
    }
  | {
      /** An image model: encoded images (PNG, JPEG, WebP) as `input.image_b64` or raw message bytes (and `embedding` inputs). */
      readonly inputKind: 'image';
      readonly embeddingDim: number;
      readonly maxBytes: number;
    }
  );

/**
 * The closed interval `[low, high]` a model's wire feature values lie in (the model manifest's
 * `value_range`, before its preprocessing): the demo encoder takes pixels in [0, 1].
 */
export type ValueRange = readonly [low: number, high: number];

export type SampleInput =
  | { readonly kind: 'features'; readonly values: Float32Array }
  | { readonly kind: 'text'; readonly text: string }
  /** Encoded image bytes (PNG, JPEG or WebP), decoded and preprocessed per the model manifest by the encoder stage. */
  | { readonly kind: 'image'; readonly bytes: Buffer }
  | { readonly kind: 'embedding'; readonly values: Float32Array };

export interface Sample {
  readonly id: string;
  readonly input: SampleInput;
  /** Passed through untouched to the review and score records. */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  /** The downstream model's prediction for this sample, when the message carries one (contracts/prediction.ts). */
  readonly prediction?: SamplePrediction;
}

export type ParseResult =
  /** `doc`: the whole parsed JSON object of a JSON message, for readers that take more keys than a sample has (a reference's `label`). */
  | { readonly ok: true; readonly sample: Sample; readonly doc?: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const MAX_ID_LENGTH = 512;
const decoder = new TextDecoder('utf-8', { fatal: true });
/** A bare NaN or Infinity where a JSON value belongs, as Python's json.dumps writes them. */
const NON_FINITE_TOKEN = /[[:,]\s*-?(?:NaN|Infinity)\s*[,\]}]/;

/**
 * The codes an image input may get after parsing, when it is decoded and preprocessed
 * (encoder/image-preprocess.ts): a rejected image goes to the DLQ with one of them.
 */
export const IMAGE_ERROR_CODES = [
  ErrorCodes.IMAGE_UNDECODABLE,
  ErrorCodes.IMAGE_UNSUPPORTED_FORMAT,
  ErrorCodes.IMAGE_TOO_LARGE,
  ErrorCodes.IMAGE_BAD_SIZE,
] as const satisfies readonly ErrorCode[];
export type ImageErrorCode = (typeof IMAGE_ERROR_CODES)[number];

/** Every code a DLQ record of a bad input may carry: parseSample's, messageFormat's and the image codes. */
export const INPUT_ERROR_CODES = [
  ErrorCodes.EMPTY,
  ErrorCodes.OVERSIZE,
  ErrorCodes.BAD_JSON,
  ErrorCodes.NON_FINITE,
  ErrorCodes.OUT_OF_RANGE,
  ErrorCodes.BAD_SCHEMA,
  ErrorCodes.MISSING_ID,
  ErrorCodes.WRONG_LENGTH,
  ErrorCodes.UNSUPPORTED_INPUT,
  ErrorCodes.EMPTY_TEXT,
  ErrorCodes.TEXT_TOO_LONG,
  ErrorCodes.META_TOO_DEEP,
  ErrorCodes.META_TOO_LARGE,
  ErrorCodes.ZERO_EMBEDDING,
  ErrorCodes.BAD_PREDICTION,
  ErrorCodes.BAD_INPUT_FORMAT,
  ...IMAGE_ERROR_CODES,
] as const satisfies readonly ErrorCode[];

/**
 * Every code a DLQ record may carry: an input's (INPUT_ERROR_CODES), an input the model refuses
 * to run (found by splitting the failed run), and a record that cannot be written as JSON.
 */
export const DLQ_CODES = [...INPUT_ERROR_CODES, ErrorCodes.INFERENCE_FAILED, ErrorCodes.RECORD_UNSERIALIZABLE] as const satisfies readonly ErrorCode[];

/**
 * How a message value is read: `json`, the sample object of the wire format, or `image`, the
 * whole value is one encoded image (PNG, JPEG or WebP) whose id is the Kafka key.
 */
export type MessageFormat = 'json' | 'image';
export const MESSAGE_FORMATS: readonly MessageFormat[] = ['json', 'image'];
/** The Kafka header that names a message's format, overriding QUALM_INPUT_FORMAT for that message. */
export const INPUT_FORMAT_HEADER = 'qualm-input-format';

/** A parse failure: the code and message a DLQ record carries. */
export type ParseFailure = Extract<ParseResult, { readonly ok: false }>;

/**
 * The format of one message: its `qualm-input-format` header (`json` or `image`, any case,
 * as a Buffer or a string; repeated headers must agree), else `fallback` (QUALM_INPUT_FORMAT).
 * An unknown value is not guessed at: it is a failure with QUALM_BAD_INPUT_FORMAT, so that the
 * DLQ record says what was wrong with the header rather than that the value is not JSON.
 */
export function messageFormat(headers: Readonly<Record<string, unknown>> | undefined, fallback: MessageFormat): MessageFormat | ParseFailure {
  const raw = headers?.[INPUT_FORMAT_HEADER];
  if (raw === undefined || raw === null) return fallback;
  const values = (Array.isArray(raw) ? raw : [raw]).map((v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : undefined));
  const names = new Set(values.map((v) => v?.trim().toLowerCase()));
  const [only] = names;
  if (names.size === 1 && (only === 'json' || only === 'image')) return only;
  const shown = values.map((v) => (v === undefined ? '(not text)' : JSON.stringify(v))).join(', ');
  return { ok: false, code: ErrorCodes.BAD_INPUT_FORMAT, message: `header ${INPUT_FORMAT_HEADER} is ${shown}, expected json or image` };
}

/** Strict base64: the standard alphabet, padded to a multiple of four characters. */
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function fail(code: ErrorCode, message: string): ParseResult {
  return { ok: false, code, message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The nesting depth of a JSON value (an object or array is one level more than its deepest
 * member; a scalar is 0), computed without recursion and given up as soon as it passes
 * `limit` (then limit + 1), so that a value thousands of levels deep costs no stack.
 */
export function depthBeyond(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: { readonly v: unknown; readonly d: number }[] = [{ v: value, d: 1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { v, d } = top;
    if (typeof v !== 'object' || v === null) continue;
    if (d > limit) return limit + 1;
    deepest = Math.max(deepest, d);
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push({ v: child, d: d + 1 });
  }
  return deepest;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Decodes little-endian float32 values from base64: strict (standard alphabet, padded, as any
 * encoder writes it), checked by encoding the bytes back, which costs less than a regular
 * expression over the string; on a little-endian machine the bytes are copied as they are.
 * The worker's fast path (npm run bench:decode).
 */
export function decodeFloat32Base64(b64: string): Float32Array | undefined {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length % 4 !== 0 || bytes.toString('base64') !== b64) return undefined;
  if (LITTLE_ENDIAN) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Encodes float32 values as little-endian base64 (the inverse of decodeFloat32Base64). */
export function encodeFloat32Base64(values: ArrayLike<number>): string {
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i] ?? 0, i * 4);
  return bytes.toString('base64');
}

/** A float32 value as a short decimal (183, 0.1, 1.5e-7), for messages. */
function showValue(v: number): string {
  return String(Number(v.toPrecision(7)));
}

/**
 * Why `values` (all finite) is refused for its value `values[at]`, outside `range`: the index,
 * the value and the range, and a hint when the whole vector looks like raw 0..255 pixels (whole
 * numbers from 0 to 255, some above the range) sent to a model that takes a unit range (the
 * classic forgotten division by 255). Runs only on the failure path, so the extra pass over the
 * values costs the good samples nothing.
 */
function outOfRange(field: string, values: Float32Array, at: number, range: ValueRange): ParseResult {
  const [lo, hi] = range;
  let min = Infinity;
  let max = -Infinity;
  let whole = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
    if (whole && !Number.isInteger(v)) whole = false;
  }
  const pixels = whole && lo >= -1 && hi <= 1 && min >= 0 && max > hi && max <= 255;
  const hint = pixels ? `; the values run ${showValue(min)}..${showValue(max)}, like raw 0..255 pixels: ${lo === 0 && hi === 1 ? 'divide them by 255' : `scale them into [${lo}, ${hi}]`} before sending` : '';
  return fail(ErrorCodes.OUT_OF_RANGE, `${field}[${at}] is ${showValue(values[at] as number)}, outside the model's value range [${lo}, ${hi}]${hint}`);
}

/**
 * The values of `raw` (a number array, or base64 of little-endian float32) as float32, when
 * there are `expected` of them, all finite and, with a `range`, inside it. The range is checked
 * in the same single pass as finiteness, against its bounds rounded to float32 (the values are
 * compared as the model gets them, so a declared 0.1 admits the float32 0.1).
 */
function toVector(field: string, raw: unknown, expected: number, range?: ValueRange): Float32Array | ParseResult {
  let values: Float32Array;
  if (Array.isArray(raw)) {
    values = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v: unknown = raw[i];
      if (v === null || (typeof v === 'string' && /^-?(nan|inf|infinity)$/i.test(v))) {
        return fail(ErrorCodes.NON_FINITE, `${field}[${i}] is ${JSON.stringify(v)}, not a finite number`);
      }
      if (typeof v !== 'number') {
        return fail(ErrorCodes.BAD_SCHEMA, `${field}[${i}] must be a number, got ${typeof v}`);
      }
      values[i] = v;
    }
  } else if (typeof raw === 'string') {
    const decoded = decodeFloat32Base64(raw);
    if (decoded === undefined) {
      return fail(ErrorCodes.BAD_SCHEMA, `${field} must be base64 of little-endian float32 values`);
    }
    values = decoded;
  } else {
    return fail(ErrorCodes.BAD_SCHEMA, `${field} must be an array of numbers`);
  }
  if (values.length !== expected) {
    return fail(ErrorCodes.WRONG_LENGTH, `${field} has ${values.length} values, the model expects ${expected}`);
  }
  const lo = range === undefined ? -Infinity : Math.fround(range[0]);
  const hi = range === undefined ? Infinity : Math.fround(range[1]);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) {
      return fail(ErrorCodes.NON_FINITE, `${field}[${i}] is not a finite number`);
    }
    if (v < lo || v > hi) return outOfRange(field, values, i, range as ValueRange);
  }
  return values;
}

/** What the model takes, for messages. */
function takes(spec: InputSpec): string {
  return spec.inputKind === 'text' ? 'text' : spec.inputKind === 'image' ? 'image_b64' : 'features or features_b64';
}

/**
 * Parses and validates one Kafka message into a Sample. Never throws: every problem
 * becomes a result with an error code and a readable message, destined for the DLQ.
 * `key` is the fallback id when the JSON has none. With `format` `image` the whole value is
 * one encoded image for an image model: its id is the key (required), it has no meta, and
 * its bytes are checked (decoded, preprocessed) by the encoder stage, not here.
 */
export function parseSample(value: Buffer | null, key: Buffer | null, spec: InputSpec, format: MessageFormat = 'json'): ParseResult {
  if (value === null || value.length === 0) return fail(ErrorCodes.EMPTY, 'message has no value');
  if (value.length > spec.maxBytes) {
    return fail(ErrorCodes.OVERSIZE, `message is ${value.length} bytes, the limit is ${spec.maxBytes}`);
  }
  if (format === 'image') {
    if (spec.inputKind !== 'image') return fail(ErrorCodes.UNSUPPORTED_INPUT, `raw image messages are not accepted by this model (it takes ${takes(spec)}, or embedding, as JSON)`);
    if (key === null || key.length === 0) return fail(ErrorCodes.MISSING_ID, 'a raw image message has no Kafka key to be its id');
    const id = key.toString('utf8');
    if (id.length > MAX_ID_LENGTH) return fail(ErrorCodes.BAD_SCHEMA, `id (the Kafka key) is longer than ${MAX_ID_LENGTH} characters`);
    return { ok: true, sample: { id, meta: undefined, input: { kind: 'image', bytes: value } } };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(value));
  } catch (err) {
    const text = value.toString('utf8');
    if (NON_FINITE_TOKEN.test(text)) {
      return fail(ErrorCodes.NON_FINITE, 'value holds a NaN or Infinity token, which JSON cannot carry');
    }
    return fail(ErrorCodes.BAD_JSON, `value is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isRecord(doc)) return fail(ErrorCodes.BAD_SCHEMA, 'value must be a JSON object');

  let id: string | undefined;
  // A blank id counts as none, so the Kafka key stands in for it (as for an absent or null id).
  const blankId = typeof doc.id === 'string' && doc.id.trim() === '';
  if (typeof doc.id === 'string' && !blankId) id = doc.id;
  else if (typeof doc.id === 'number' && Number.isFinite(doc.id)) {
    // JSON numbers past 2^53 have already lost digits (12345678901234567890 reads as ...7000): refuse rather than rename.
    if (Number.isInteger(doc.id) && !Number.isSafeInteger(doc.id)) {
      return fail(ErrorCodes.BAD_SCHEMA, `id ${String(doc.id)} is a number too large to be read exactly (beyond 2^53); send it as a string`);
    }
    id = String(doc.id);
  }
  else if (doc.id !== undefined && doc.id !== null && !blankId) return fail(ErrorCodes.BAD_SCHEMA, 'id must be a non-empty string');
  else if (key !== null && key.length > 0) id = key.toString('utf8');
  if (id === undefined) return fail(ErrorCodes.MISSING_ID, 'message has no id and no Kafka key');
  if (id.length > MAX_ID_LENGTH) return fail(ErrorCodes.BAD_SCHEMA, `id is longer than ${MAX_ID_LENGTH} characters`);

  let meta: Record<string, unknown> | undefined;
  if (doc.meta !== undefined && doc.meta !== null) {
    if (!isRecord(doc.meta)) return fail(ErrorCodes.BAD_SCHEMA, 'meta must be a JSON object');
    const maxDepth = spec.maxMetaDepth ?? MAX_META_DEPTH;
    const depth = depthBeyond(doc.meta, maxDepth);
    if (depth > maxDepth) return fail(ErrorCodes.META_TOO_DEEP, `meta is nested more than ${maxDepth} levels deep`);
    const maxMetaBytes = spec.maxMetaBytes ?? MAX_META_BYTES;
    let metaJson: string;
    try {
      metaJson = JSON.stringify(doc.meta);
    } catch {
      // Deeper than JSON.stringify can recurse (a depth limit set far above the default): no record could carry it.
      return fail(ErrorCodes.META_TOO_DEEP, 'meta is nested too deeply to be written as JSON');
    }
    const metaBytes = Buffer.byteLength(metaJson, 'utf8');
    if (metaBytes > maxMetaBytes) return fail(ErrorCodes.META_TOO_LARGE, `meta is ${metaBytes} bytes as JSON, the limit is ${maxMetaBytes}`);
    meta = doc.meta;
  }
  let prediction: SamplePrediction | undefined;
  if (doc.prediction !== undefined && doc.prediction !== null) {
    const p = parsePrediction(doc.prediction);
    if (!p.ok) return fail(p.code, p.message);
    prediction = p.prediction;
  }
  // The sample as parsed so far; `input` is added below.
  const base = prediction === undefined ? { id, meta } : { id, meta, prediction };

  const input = doc.input;
  if (!isRecord(input)) return fail(ErrorCodes.BAD_SCHEMA, 'input must be a JSON object');
  const present = ['features', 'features_b64', 'embedding', 'text', 'image_b64'].filter((k) => input[k] !== undefined);
  if (present.length !== 1) {
    return fail(
      ErrorCodes.BAD_SCHEMA,
      present.length === 0
        ? `input must hold one of ${spec.inputKind === 'text' ? 'text' : spec.inputKind === 'image' ? 'image_b64' : 'features, features_b64'} or embedding`
        : `input must hold exactly one kind, got ${present.join(', ')}`,
    );
  }
  const kind = present[0] as string;
  if (kind === 'embedding') {
    const v = toVector('input.embedding', input.embedding, spec.embeddingDim);
    if (!(v instanceof Float32Array)) return v;
    if ((spec.metric ?? 'cosine') === 'cosine' && v.every((x) => x === 0)) {
      return fail(ErrorCodes.ZERO_EMBEDDING, 'input.embedding is all zeros: it has no direction to compare by cosine (an upstream encoder that failed?)');
    }
    return { ok: true, doc, sample: { ...base, input: { kind: 'embedding', values: v } } };
  }
  if (kind === 'image_b64' && spec.inputKind === 'image') {
    const b64 = input.image_b64;
    if (typeof b64 !== 'string') return fail(ErrorCodes.BAD_SCHEMA, `input.image_b64 must be a base64 string, got ${b64 === null ? 'null' : Array.isArray(b64) ? 'array' : typeof b64}`);
    if (b64 === '') return fail(ErrorCodes.BAD_SCHEMA, 'input.image_b64 is empty');
    if (!STRICT_BASE64.test(b64)) return fail(ErrorCodes.BAD_SCHEMA, 'input.image_b64 must be standard base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)');
    return { ok: true, doc, sample: { ...base, input: { kind: 'image', bytes: Buffer.from(b64, 'base64') } } };
  }
  if ((kind === 'features' || kind === 'features_b64') && spec.inputKind === 'features') {
    const v = toVector(`input.${kind}`, input[kind], spec.inputDim, spec.valueRange);
    if (!(v instanceof Float32Array)) return v;
    return { ok: true, doc, sample: { ...base, input: { kind: 'features', values: v } } };
  }
  if (kind === 'text' && spec.inputKind === 'text') {
    const text = input.text;
    if (typeof text !== 'string') return fail(ErrorCodes.BAD_SCHEMA, `input.text must be a string, got ${text === null ? 'null' : Array.isArray(text) ? 'array' : typeof text}`);
    if (text.trim() === '') return fail(ErrorCodes.EMPTY_TEXT, `input.text is ${text === '' ? 'empty' : 'only whitespace'}`);
    const limit = spec.maxTextBytes ?? MAX_TEXT_BYTES;
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limit) return fail(ErrorCodes.TEXT_TOO_LONG, `input.text is ${bytes} bytes of UTF-8, the limit is ${limit}`);
    return { ok: true, doc, sample: { ...base, input: { kind: 'text', text } } };
  }
  return fail(ErrorCodes.UNSUPPORTED_INPUT, `input kind ${kind} is not accepted by this model (it takes ${takes(spec)}, or embedding)`);
}
