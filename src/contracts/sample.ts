import { ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * Longest `input.text` accepted, in UTF-8 bytes (64 KiB). A text model reads only its first
 * max_tokens tokens (256 for all-MiniLM-L6-v2: about 1 KiB of English), so a longer text is
 * almost all ignored, and tokenizing it would still cost time on the inference thread; the
 * longest IMDB review is 13.7 KB. QUALM_MAX_MESSAGE_BYTES bounds the whole message first.
 */
export const MAX_TEXT_BYTES = 65_536;

/** What the model accepts, as far as parsing is concerned. */
export type InputSpec =
  | {
      /** Input kind of the model manifest; `embedding` inputs are always accepted too. */
      readonly inputKind: 'features';
      /** Number of feature values the encoder expects. */
      readonly inputDim: number;
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
    };

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
}

export type ParseResult =
  | { readonly ok: true; readonly sample: Sample }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const MAX_ID_LENGTH = 512;
const decoder = new TextDecoder('utf-8', { fatal: true });
/** A bare NaN or Infinity where a JSON value belongs, as Python's json.dumps writes them. */
const NON_FINITE_TOKEN = /[[:,]\s*-?(?:NaN|Infinity)\s*[,\]}]/;

/** Every error code parseSample can give: the codes a DLQ record may carry. */
export const INPUT_ERROR_CODES = [
  ErrorCodes.EMPTY,
  ErrorCodes.OVERSIZE,
  ErrorCodes.BAD_JSON,
  ErrorCodes.NON_FINITE,
  ErrorCodes.BAD_SCHEMA,
  ErrorCodes.MISSING_ID,
  ErrorCodes.WRONG_LENGTH,
  ErrorCodes.UNSUPPORTED_INPUT,
  ErrorCodes.EMPTY_TEXT,
  ErrorCodes.TEXT_TOO_LONG,
] as const satisfies readonly ErrorCode[];

function fail(code: ErrorCode, message: string): ParseResult {
  return { ok: false, code, message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes little-endian float32 values from base64. */
export function decodeFloat32Base64(b64: string): Float32Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length % 4 !== 0) return undefined;
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

function toVector(field: string, raw: unknown, expected: number): Float32Array | ParseResult {
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
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      return fail(ErrorCodes.NON_FINITE, `${field}[${i}] is not a finite number`);
    }
  }
  return values;
}

/**
 * Parses and validates one Kafka message into a Sample. Never throws: every problem
 * becomes a result with an error code and a readable message, destined for the DLQ.
 * `key` is the fallback id when the JSON has none.
 */
export function parseSample(value: Buffer | null, key: Buffer | null, spec: InputSpec): ParseResult {
  if (value === null || value.length === 0) return fail(ErrorCodes.EMPTY, 'message has no value');
  if (value.length > spec.maxBytes) {
    return fail(ErrorCodes.OVERSIZE, `message is ${value.length} bytes, the limit is ${spec.maxBytes}`);
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
  if (typeof doc.id === 'string' && doc.id.trim() !== '') id = doc.id;
  else if (typeof doc.id === 'number' && Number.isFinite(doc.id)) id = String(doc.id);
  else if (doc.id !== undefined && doc.id !== null) return fail(ErrorCodes.BAD_SCHEMA, 'id must be a non-empty string');
  else if (key !== null && key.length > 0) id = key.toString('utf8');
  if (id === undefined) return fail(ErrorCodes.MISSING_ID, 'message has no id and no Kafka key');
  if (id.length > MAX_ID_LENGTH) return fail(ErrorCodes.BAD_SCHEMA, `id is longer than ${MAX_ID_LENGTH} characters`);

  let meta: Record<string, unknown> | undefined;
  if (doc.meta !== undefined && doc.meta !== null) {
    if (!isRecord(doc.meta)) return fail(ErrorCodes.BAD_SCHEMA, 'meta must be a JSON object');
    meta = doc.meta;
  }

  const input = doc.input;
  if (!isRecord(input)) return fail(ErrorCodes.BAD_SCHEMA, 'input must be a JSON object');
  const present = ['features', 'features_b64', 'embedding', 'text', 'image_b64'].filter((k) => input[k] !== undefined);
  if (present.length !== 1) {
    return fail(
      ErrorCodes.BAD_SCHEMA,
      present.length === 0
        ? `input must hold one of ${spec.inputKind === 'text' ? 'text' : 'features, features_b64'} or embedding`
        : `input must hold exactly one kind, got ${present.join(', ')}`,
    );
  }
  const kind = present[0] as string;
  if (kind === 'embedding') {
    const v = toVector('input.embedding', input.embedding, spec.embeddingDim);
    if (!(v instanceof Float32Array)) return v;
    return { ok: true, sample: { id, meta, input: { kind: 'embedding', values: v } } };
  }
  if ((kind === 'features' || kind === 'features_b64') && spec.inputKind === 'features') {
    const v = toVector(`input.${kind}`, input[kind], spec.inputDim);
    if (!(v instanceof Float32Array)) return v;
    return { ok: true, sample: { id, meta, input: { kind: 'features', values: v } } };
  }
  if (kind === 'text' && spec.inputKind === 'text') {
    const text = input.text;
    if (typeof text !== 'string') return fail(ErrorCodes.BAD_SCHEMA, `input.text must be a string, got ${text === null ? 'null' : Array.isArray(text) ? 'array' : typeof text}`);
    if (text.trim() === '') return fail(ErrorCodes.EMPTY_TEXT, `input.text is ${text === '' ? 'empty' : 'only whitespace'}`);
    const limit = spec.maxTextBytes ?? MAX_TEXT_BYTES;
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limit) return fail(ErrorCodes.TEXT_TOO_LONG, `input.text is ${bytes} bytes of UTF-8, the limit is ${limit}`);
    return { ok: true, sample: { id, meta, input: { kind: 'text', text } } };
  }
  return fail(ErrorCodes.UNSUPPORTED_INPUT, `input kind ${kind} is not accepted by this model (it takes ${spec.inputKind === 'text' ? 'text' : 'features or features_b64'}, or embedding)`);
}
