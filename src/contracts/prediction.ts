import { ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * The downstream model's prediction a sample (or a reference of `build-index --references`)
 * may carry beside its input, in one of three forms:
 *
 *   "prediction": {"probs": [0.05, 0.9, 0.05]}        probabilities in the bundle's label order, summing to 1
 *   "prediction": {"logits": [-1.2, 3.4, 0.1]}        raw scores in that order (softmax applied)
 *   "prediction": {"label": "Bag", "confidence": 0.9}  a label (name or index) and the model's confidence in it
 *
 * A malformed one sends the message to the DLQ with QUALM_BAD_PREDICTION. Whether it fits the
 * bundle (as many probabilities as labels, a label the bundle has) is only known when the
 * sample is scored: one that does not fit is not used (the record's model signals are null).
 */
export type SamplePrediction =
  | { readonly probs: readonly number[] }
  | { readonly logits: readonly number[] }
  | { readonly label: number | string; readonly confidence: number };

/** Probabilities may sum to 1 within this. */
export const PREDICTION_SUM_TOLERANCE = 1e-3;
/** More classes than this is not a classifier's output. */
export const MAX_PREDICTION_CLASSES = 100_000;

export type PredictionResult = { readonly ok: true; readonly prediction: SamplePrediction } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

function bad(message: string): PredictionResult {
  return { ok: false, code: ErrorCodes.BAD_PREDICTION, message };
}

function numbers(field: string, raw: unknown): number[] | PredictionResult {
  if (!Array.isArray(raw)) return bad(`${field} must be an array of numbers`);
  if (raw.length < 2) return bad(`${field} has ${raw.length} values; a classifier's output has at least two`);
  if (raw.length > MAX_PREDICTION_CLASSES) return bad(`${field} has ${raw.length} values, more than ${MAX_PREDICTION_CLASSES}`);
  const out: number[] = [];
  for (const [i, v] of raw.entries()) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return bad(`${field}[${i}] is ${JSON.stringify(v) ?? String(v)}, not a finite number`);
    out.push(v);
  }
  return out;
}

/** Validates the `prediction` field of a message (field names it in messages). */
export function parsePrediction(raw: unknown, field = 'prediction'): PredictionResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(`${field} must be an object: {"probs": [...]}, {"logits": [...]} or {"label": L, "confidence": c}`);
  const doc = raw as Record<string, unknown>;
  const forms = ['probs', 'logits', 'label'].filter((k) => doc[k] !== undefined);
  if (forms.length !== 1) return bad(`${field} must hold exactly one of probs, logits or label, got ${forms.length === 0 ? 'none' : forms.join(', ')}`);
  const extra = Object.keys(doc).filter((k) => !['probs', 'logits', 'label', 'confidence'].includes(k) || (k === 'confidence' && forms[0] !== 'label'));
  if (extra.length > 0) return bad(`${field} has unknown key${extra.length > 1 ? 's' : ''} ${extra.join(', ')}`);
  if (forms[0] === 'probs') {
    const p = numbers(`${field}.probs`, doc.probs);
    if (!Array.isArray(p)) return p;
    const outside = p.findIndex((v) => v < 0 || v > 1);
    if (outside >= 0) return bad(`${field}.probs[${outside}] is ${p[outside]}, outside [0, 1]`);
    const sum = p.reduce((s, v) => s + v, 0);
    if (Math.abs(sum - 1) > PREDICTION_SUM_TOLERANCE) return bad(`${field}.probs sum to ${sum}, not 1 (±${PREDICTION_SUM_TOLERANCE}); send logits if they are not probabilities`);
    return { ok: true, prediction: { probs: p } };
  }
  if (forms[0] === 'logits') {
    const l = numbers(`${field}.logits`, doc.logits);
    if (!Array.isArray(l)) return l;
    return { ok: true, prediction: { logits: l } };
  }
  const label = doc.label;
  if (!((typeof label === 'string' && label.trim() !== '') || (typeof label === 'number' && Number.isSafeInteger(label) && label >= 0))) {
    return bad(`${field}.label must be a label name or a non-negative integer index, got ${JSON.stringify(label)}`);
  }
  const c = doc.confidence;
  if (typeof c !== 'number' || !Number.isFinite(c) || c < 0 || c > 1) return bad(`${field}.confidence must be a number in [0, 1] beside the label, got ${JSON.stringify(c) ?? 'nothing'}`);
  return { ok: true, prediction: { label, confidence: c } };
}
