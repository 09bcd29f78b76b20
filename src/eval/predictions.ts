import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorCodes, QualmError, describeError } from '../errors.js';
import { CsvLineError, splitCsvLine as splitCsv } from '../util/csv.js';

/**
 * The user's downstream model's predictions per test id (`qualm evaluate --predictions`):
 * JSONL lines `{"id", "label"}`, `{"id", "probs": [...]}` or `{"id", "logits": [...]}`, or a
 * CSV with a header `id,label` or `id,p_<name>,...` (one column per reference label). With
 * them, the error the evaluation ranks is that model's (predicted label ≠ true label).
 */

/** A probability vector must sum to 1 within this. */
export const PROBABILITY_SUM_TOLERANCE = 1e-3;
/** How many offending ids or lines an error names. */
const EXAMPLES = 5;

/** What a predictions file holds: predicted labels only, or a probability vector per id. */
export type PredictionsForm = 'labels' | 'probabilities';

export interface Prediction {
  readonly id: string;
  /** Index of the predicted label in the references' label order (the argmax for probabilities). */
  readonly label: number;
  /** The probability vector in the references' label order (logits softmaxed); null for a label-only file. */
  readonly probs: Float64Array | null;
  /** `file:line`, for messages. */
  readonly where: string;
}

export interface PredictionsFile {
  readonly path: string;
  readonly form: PredictionsForm;
  readonly byId: ReadonlyMap<string, Prediction>;
  /** Lines dropped under skipInvalid, and the first few reasons. */
  readonly skipped: number;
  readonly skippedReasons: readonly string[];
}

export interface ReadPredictionsOptions {
  /** The references' label names, in their order: labels are looked up in it and probabilities follow it. */
  readonly labelNames: readonly string[];
  /** Drop (and count) bad lines instead of failing on the first. */
  readonly skipInvalid?: boolean;
  /** `jsonl` or `csv`; by default from the extension (`.csv`, else JSONL). */
  readonly format?: 'jsonl' | 'csv';
}

/** A bad predictions line or file: the message names the file, line and field. */
export function predictionsError(message: string, path: string, cause?: unknown): QualmError {
  return new QualmError(ErrorCodes.PREDICTIONS_INVALID, message, { context: { path }, ...(cause === undefined ? {} : { cause }) });
}

/** A bad line: thrown unless skipInvalid, which counts it. */
class LineError extends Error {}

/** Softmax of finite logits (max subtracted first). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** Index of the largest value (the first on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function checkVector(field: string, raw: readonly unknown[], numLabels: number, labelNames: readonly string[]): Float64Array {
  if (raw.length !== numLabels) {
    throw new LineError(`field ${field} has ${raw.length} values; the references have ${numLabels} labels (${labelNames.map((l) => JSON.stringify(l)).join(', ')}, in this order)`);
  }
  const v = new Float64Array(numLabels);
  for (let c = 0; c < numLabels; c++) {
    const x = raw[c];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new LineError(`field ${field}[${c}] must be a finite number, got ${JSON.stringify(x ?? null)}`);
    v[c] = x;
  }
  return v;
}

function checkProbabilities(field: string, p: Float64Array): Float64Array {
  let sum = 0;
  for (let c = 0; c < p.length; c++) {
    const x = p[c] as number;
    if (x < 0 || x > 1) throw new LineError(`field ${field}[${c}] is ${x}, not a probability in [0, 1]`);
    sum += x;
  }
  if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) {
    throw new LineError(`field ${field} sums to ${sum.toPrecision(6)}, not 1 ± ${PROBABILITY_SUM_TOLERANCE} (give logits as "logits" to have them softmaxed)`);
  }
  return p;
}

function labelIndex(field: string, raw: unknown, labelIds: ReadonlyMap<string, number>): number {
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new LineError(`field ${field} must be a string or a number, got ${raw === null ? 'null' : typeof raw}`);
  const name = String(raw);
  const c = labelIds.get(name);
  if (c === undefined) throw new LineError(`field ${field}: unknown label ${JSON.stringify(name)}; the references' labels are ${[...labelIds.keys()].map((l) => JSON.stringify(l)).join(', ')}`);
  return c;
}

/** The predicted label and probabilities of one line, from what it gives. */
function resolve(label: number | null, probs: Float64Array | null, probsField: string, labelNames: readonly string[]): { label: number; probs: Float64Array | null } {
  if (probs === null) {
    if (label === null) throw new LineError('no prediction: give "label", "probs" or "logits"');
    return { label, probs: null };
  }
  const top = argmax(probs);
  if (label !== null && label !== top) {
    throw new LineError(`field label ${JSON.stringify(labelNames[label])} is not the argmax of ${probsField} (${JSON.stringify(labelNames[top])})`);
  }
  return { label: top, probs };
}

interface LineOut {
  readonly id: string;
  readonly label: number;
  readonly probs: Float64Array | null;
}

function parseJsonLine(text: string, labelNames: readonly string[], labelIds: ReadonlyMap<string, number>): LineOut {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new LineError(`not JSON (${describeError(err)})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new LineError('must be a JSON object {"id", "label" | "probs" | "logits"}');
  const o = doc as Record<string, unknown>;
  const id = o.id;
  if ((typeof id !== 'string' || id === '') && typeof id !== 'number') throw new LineError('field id must be a non-empty string or a number');
  if (o.probs !== undefined && o.logits !== undefined) throw new LineError('give "probs" or "logits", not both');
  const label = o.label === undefined ? null : labelIndex('label', o.label, labelIds);
  let probs: Float64Array | null = null;
  let field = 'probs';
  for (const f of ['probs', 'logits'] as const) {
    const raw = o[f];
    if (raw === undefined) continue;
    if (!Array.isArray(raw)) throw new LineError(`field ${f} must be an array of ${labelNames.length} numbers`);
    const v = checkVector(f, raw, labelNames.length, labelNames);
    probs = f === 'probs' ? checkProbabilities(f, v) : softmax(v);
    field = f;
  }
  return { id: String(id), ...resolve(label, probs, field, labelNames) };
}

/** One CSV line of a predictions file (RFC 4180 quoting); a malformed line is a LineError. */
export function splitCsvLine(line: string): string[] {
  try {
    return splitCsv(line);
  } catch (err) {
    if (err instanceof CsvLineError) throw new LineError(err.message);
    throw err;
  }
}

/** Where each column of a predictions CSV goes. */
interface CsvLayout {
  readonly idCol: number;
  readonly labelCol: number | null;
  /** Column of each label's probability, in the references' label order; null without p_ columns. */
  readonly probCols: readonly number[] | null;
}

function csvLayout(header: readonly string[], labelNames: readonly string[], labelIds: ReadonlyMap<string, number>): CsvLayout {
  const idCol = header.indexOf('id');
  if (idCol < 0) throw new LineError(`the header has no "id" column (got ${header.map((h) => JSON.stringify(h)).join(',')})`);
  const labelCol = header.indexOf('label');
  const probCols = new Array<number>(labelNames.length).fill(-1);
  let any = false;
  header.forEach((h, col) => {
    if (!h.startsWith('p_')) return;
    const name = h.slice(2);
    const c = labelIds.get(name);
    if (c === undefined) throw new LineError(`header column ${JSON.stringify(h)}: unknown label ${JSON.stringify(name)}; the references' labels are ${labelNames.map((l) => JSON.stringify(l)).join(', ')}`);
    if (probCols[c] !== -1) throw new LineError(`header column ${JSON.stringify(h)} appears twice`);
    probCols[c] = col;
    any = true;
  });
  if (any) {
    const missing = labelNames.filter((_, c) => probCols[c] === -1);
    if (missing.length > 0) throw new LineError(`the header has no probability column for ${missing.map((l) => JSON.stringify(`p_${l}`)).join(', ')}`);
  } else if (labelCol < 0) {
    throw new LineError('the header needs "label" or one "p_<label>" column per reference label');
  }
  return { idCol, labelCol: labelCol < 0 ? null : labelCol, probCols: any ? probCols : null };
}

function parseCsvLine(text: string, header: readonly string[], layout: CsvLayout, labelNames: readonly string[], labelIds: ReadonlyMap<string, number>): LineOut {
  const cells = splitCsvLine(text);
  if (cells.length !== header.length) throw new LineError(`${cells.length} fields, the header has ${header.length}`);
  const id = cells[layout.idCol] as string;
  if (id === '') throw new LineError('field id is empty');
  const label = layout.labelCol === null ? null : labelIndex('label', cells[layout.labelCol], labelIds);
  let probs: Float64Array | null = null;
  if (layout.probCols !== null) {
    probs = new Float64Array(labelNames.length);
    for (const [c, col] of layout.probCols.entries()) {
      const raw = (cells[col] as string).trim();
      const x = Number(raw);
      if (raw === '' || !Number.isFinite(x)) throw new LineError(`field ${header[col]} must be a finite number, got ${JSON.stringify(cells[col])}`);
      if (x < 0 || x > 1) throw new LineError(`field ${header[col]} is ${x}, not a probability in [0, 1]`);
      probs[c] = x;
    }
    let sum = 0;
    for (const p of probs) sum += p;
    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) throw new LineError(`fields p_* sum to ${sum.toPrecision(6)}, not 1 ± ${PROBABILITY_SUM_TOLERANCE}`);
  }
  return { id, ...resolve(label, probs, 'p_*', labelNames) };
}

/** Reads a predictions file line by line (never whole), checking every line against the references' labels. */
export async function readPredictions(path: string, opts: ReadPredictionsOptions): Promise<PredictionsFile> {
  const { labelNames } = opts;
  if (labelNames.length === 0) throw predictionsError(`${path}: the references have no labels to predict`, path);
  const labelIds = new Map(labelNames.map((l, c) => [l, c] as const));
  const format = opts.format ?? (extname(path).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  const byId = new Map<string, Prediction>();
  const skippedReasons: string[] = [];
  let skipped = 0;
  let form: PredictionsForm | null = null;
  let header: string[] | null = null;
  let layout: CsvLayout | null = null;
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      const text = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      const where = `${path}:${lineNo}`;
      if (format === 'csv' && header === null) {
        try {
          header = splitCsvLine(text).map((h) => h.trim());
          layout = csvLayout(header, labelNames, labelIds);
        } catch (err) {
          throw predictionsError(`${where}: ${describeError(err)}`, path, err);
        }
        continue;
      }
      try {
        const line = format === 'csv' ? parseCsvLine(text, header as string[], layout as CsvLayout, labelNames, labelIds) : parseJsonLine(text, labelNames, labelIds);
        const lineForm: PredictionsForm = line.probs === null ? 'labels' : 'probabilities';
        form ??= lineForm;
        if (lineForm !== form) throw new LineError(`gives ${lineForm === 'labels' ? 'only a label' : 'probabilities'}, the lines before it ${form === 'labels' ? 'only labels' : 'probabilities'}: one form per file`);
        const seen = byId.get(line.id);
        if (seen !== undefined) throw new LineError(`field id ${JSON.stringify(line.id)} repeats ${seen.where}`);
        byId.set(line.id, { ...line, where });
      } catch (err) {
        if (!(err instanceof LineError)) throw err;
        if (opts.skipInvalid !== true) throw predictionsError(`${where}: ${err.message}`, path);
        skipped++;
        if (skippedReasons.length < EXAMPLES) skippedReasons.push(`${where}: ${err.message}`);
      }
    }
  } catch (err) {
    if (err instanceof QualmError) throw err;
    throw predictionsError(`cannot read predictions ${path}: ${describeError(err)}`, path, err);
  } finally {
    lines.close();
    stream.destroy();
  }
  if (form === null) throw predictionsError(`${path}: no predictions${skipped > 0 ? ` (${skipped} bad lines skipped; first: ${skippedReasons[0]})` : ''}`, path);
  return { path, form, byId, skipped, skippedReasons };
}

/** The predictions in the order of the test set, and which test points have one. */
export interface AlignedPredictions {
  /** Indices of the test points kept (all of them unless skipInvalid dropped some). */
  readonly keep: readonly number[];
  /** Predicted label per kept test point. */
  readonly labels: Int32Array;
  /** Probabilities per kept test point, row-major [keep.length, numLabels]; null for labels only. */
  readonly probs: Float64Array | null;
  /** Test ids with no prediction (dropped under skipInvalid), and predictions of no test id (ignored under skipInvalid). */
  readonly missing: number;
  readonly extra: number;
}

const examples = (ids: readonly string[]): string => `${ids.slice(0, EXAMPLES).map((id) => JSON.stringify(id)).join(', ')}${ids.length > EXAMPLES ? ', ...' : ''}`;

/**
 * Matches the predictions to the test ids: every test id needs one and every prediction a
 * test id; otherwise an error naming the first few, unless skipInvalid drops them.
 */
export function alignPredictions(file: PredictionsFile, testIds: readonly string[], numLabels: number, opts: { readonly skipInvalid?: boolean } = {}): AlignedPredictions {
  const missing: string[] = [];
  const keep: number[] = [];
  const known = new Set<string>();
  for (const [i, id] of testIds.entries()) {
    known.add(id);
    if (file.byId.has(id)) keep.push(i);
    else missing.push(id);
  }
  const extra = [...file.byId.keys()].filter((id) => !known.has(id));
  if (opts.skipInvalid !== true) {
    if (missing.length > 0) throw predictionsError(`${file.path}: ${missing.length} of ${testIds.length} test ids have no prediction: ${examples(missing)} (--skip-invalid drops them)`, file.path);
    if (extra.length > 0) throw predictionsError(`${file.path}: ${extra.length} predictions name no test id: ${examples(extra)}, first at ${file.byId.get(extra[0] as string)?.where} (--skip-invalid ignores them)`, file.path);
  }
  if (keep.length === 0) throw predictionsError(`${file.path}: no test id has a prediction`, file.path);
  const labels = new Int32Array(keep.length);
  const probs = file.form === 'probabilities' ? new Float64Array(keep.length * numLabels) : null;
  keep.forEach((t, j) => {
    const p = file.byId.get(testIds[t] as string) as Prediction;
    labels[j] = p.label;
    if (probs !== null && p.probs !== null) probs.set(p.probs, j * numLabels);
  });
  return { keep, labels, probs, missing: missing.length, extra: extra.length };
}
