import { SKIP_LOCATIONS_KEPT, SourceRecordError } from './skips.js';
import type { SkipReport } from './types.js';

const INTEGER_LITERAL = /^-?\d+$/;

/**
 * The order of a file's label names, whatever order the file gives them in: numeric when
 * every label is an integer literal ("0".."9", "-1", "10"), else by UTF-16 code unit. Duplicates
 * are dropped.
 */
export function labelOrder(labels: Iterable<string>): string[] {
  const set = [...new Set(labels)];
  if (set.length > 0 && set.every((l) => INTEGER_LITERAL.test(l))) {
    return set.sort((a, b) => {
      const d = BigInt(a) - BigInt(b);
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    });
  }
  return set.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A record's `label` as the data gave it: a non-empty string kept as is, a finite number as
 * its decimal string (3 -> "3", 2.5 -> "2.5"); absent or null is unlabelled (undefined).
 * Anything else is a SourceRecordError naming `where` and the field.
 */
export function labelValue(raw: unknown, where: string, field = 'label'): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string') {
    if (raw.trim() === '') throw new SourceRecordError(where, 'bad_label', `${field} is an empty string`);
    return raw;
  }
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  const got = Array.isArray(raw) ? 'array' : typeof raw === 'number' ? String(raw) : typeof raw;
  throw new SourceRecordError(where, 'bad_label', `${field} must be a string or a number, got ${got}`);
}

export interface CollectedLabels {
  /** Label index per kept row, or null when no record had a label. */
  readonly labels: number[] | null;
  readonly labelNames: string[] | null;
  /** Rows to keep (1) when some were dropped for having no label; null when all are kept. */
  readonly keep: Uint8Array | null;
  /** Rows dropped for having no label (reason `unlabelled`). */
  readonly skipped: SkipReport;
}

/**
 * Gathers the labels of a stream of rows without keeping their strings: each distinct label
 * gets a provisional code, remapped at the end to the declared order (a built-in's) or to
 * labelOrder. A source is labelled when every record has a label, unlabelled when none has;
 * a mix is an error naming the first record without a label, unless skipInvalid, when the
 * unlabelled rows are dropped and counted.
 */
export class LabelCollector {
  private codes = new Int32Array(1024);
  private n = 0;
  private readonly seen = new Map<string, number>();
  private firstLabelled: string | undefined;
  private readonly unlabelledAt: string[] = [];
  private unlabelled = 0;

  constructor(private readonly declared?: readonly string[]) {}

  /** The label of the next row (undefined: none), and where the row came from. */
  add(label: string | undefined, where: string): void {
    if (this.n === this.codes.length) {
      const grown = new Int32Array(this.codes.length * 2);
      grown.set(this.codes);
      this.codes = grown;
    }
    if (label === undefined) {
      this.unlabelled++;
      if (this.unlabelledAt.length < SKIP_LOCATIONS_KEPT) this.unlabelledAt.push(where);
      this.codes[this.n++] = -1;
      return;
    }
    this.firstLabelled ??= where;
    let code = this.seen.get(label);
    if (code === undefined) {
      if (this.declared !== undefined && !this.declared.includes(label)) {
        throw new SourceRecordError(where, 'bad_label', `label ${JSON.stringify(label)} is not one of the source's labels (${this.declared.join(', ')})`);
      }
      code = this.seen.size;
      this.seen.set(label, code);
    }
    this.codes[this.n++] = code;
  }

  get count(): number {
    return this.n;
  }

  finish(skipInvalid: boolean): CollectedLabels {
    const none: SkipReport = { total: 0, byReason: {} };
    if (this.firstLabelled === undefined) return { labels: null, labelNames: null, keep: null, skipped: none };
    if (this.unlabelled > 0 && !skipInvalid) {
      const at = this.unlabelledAt[0] as string;
      throw new SourceRecordError(at, 'unlabelled', `record has no label, but others do (first at ${this.firstLabelled}): label every record or none (or pass --skip-invalid to drop the ${this.unlabelled} unlabelled)`);
    }
    const names = this.declared === undefined ? labelOrder(this.seen.keys()) : [...this.declared];
    const remap = new Int32Array(this.seen.size);
    for (const [label, code] of this.seen) remap[code] = names.indexOf(label);
    const labels: number[] = [];
    const keep = this.unlabelled > 0 ? new Uint8Array(this.n) : null;
    for (let i = 0; i < this.n; i++) {
      const c = this.codes[i] as number;
      if (c < 0) continue;
      if (keep !== null) keep[i] = 1;
      labels.push(remap[c] as number);
    }
    const skipped: SkipReport = keep === null ? none : { total: this.unlabelled, byReason: { unlabelled: { count: this.unlabelled, first: [...this.unlabelledAt] } } };
    return { labels, labelNames: names, keep, skipped };
  }
}
