import type { RecordSource, ScoreRecord } from '../contracts/index.js';
import { SIGNAL_WIRE_NAMES } from '../signals.js';

/** The columns of `qualm score --format csv` before the signals (one per signal follows, by wire name). */
export const CSV_RECORD_COLUMNS = ['id', 'uncertainty', 'predicted_accuracy', 'flagged', 'reason', 'rule', 'suggested_label'] as const;

/** The CSV header: the record columns, then every signal of the signal table in record order. */
export const CSV_COLUMNS: readonly string[] = [...CSV_RECORD_COLUMNS, ...SIGNAL_WIRE_NAMES];

/** One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; null is empty. */
export function csvField(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

/** A score record as one CSV row, columns as csvHeader (numbers as JavaScript prints them, null empty). */
export function csvRow(r: ScoreRecord<RecordSource>): string {
  const head = [r.id, r.uncertainty, r.predicted_accuracy, r.flagged, r.reason, r.rule, r.suggested_label];
  const signals = SIGNAL_WIRE_NAMES.map((w) => r.signals[w]);
  return [...head, ...signals].map(csvField).join(',');
}
