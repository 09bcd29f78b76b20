import { ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * A reviewer's verdict on a flagged sample, published to the labels topic (keyed by id).
 * `qualm build-index --labels` joins it with the sample's review record and adds the
 * sample, with this label, to the next bundle's references.
 */
export interface LabelRecord {
  /** The id of the reviewed sample (the review record's id). */
  id: string;
  /** One of the bundle's label names. */
  label: string;
  /** Who reviewed it. */
  reviewer: string;
  /** When, ISO 8601. */
  reviewed_at: string;
}

export type LabelParseResult = { readonly ok: true; readonly record: LabelRecord } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const MAX_FIELD = 256;

/** Parses one labels-topic value; a bad record comes back with a code and a readable reason. */
export function parseLabelRecord(value: Buffer | string | null): LabelParseResult {
  const fail = (code: ErrorCode, message: string): LabelParseResult => ({ ok: false, code, message });
  if (value === null || value.length === 0) return fail(ErrorCodes.EMPTY, 'label record has no value');
  let doc: unknown;
  try {
    doc = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return fail(ErrorCodes.BAD_JSON, `label record is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail(ErrorCodes.BAD_SCHEMA, 'label record must be a JSON object');
  const r = doc as Record<string, unknown>;
  for (const field of ['id', 'label', 'reviewer', 'reviewed_at'] as const) {
    const v = r[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_FIELD) {
      return fail(field === 'id' ? ErrorCodes.MISSING_ID : ErrorCodes.BAD_SCHEMA, `${field} must be a non-empty string of at most ${MAX_FIELD} characters`);
    }
  }
  if (Number.isNaN(Date.parse(r.reviewed_at as string))) return fail(ErrorCodes.BAD_SCHEMA, 'reviewed_at must be an ISO 8601 time');
  return { ok: true, record: { id: r.id as string, label: r.label as string, reviewer: r.reviewer as string, reviewed_at: r.reviewed_at as string } };
}
