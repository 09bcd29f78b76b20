import { ErrorCodes, QualmError } from '../errors.js';
import type { SkipReport } from './types.js';

/** Locations kept per skip reason. */
export const SKIP_LOCATIONS_KEPT = 5;

/** A bad record at `where`: `where: message`, code QUALM_SOURCE_INVALID, `reason` kept for counting. */
export class SourceRecordError extends QualmError {
  constructor(
    readonly where: string,
    readonly reason: string,
    detail: string,
    path?: string,
  ) {
    super(ErrorCodes.SOURCE_INVALID, `${where}: ${detail}`, path === undefined ? {} : { context: { path } });
    this.name = 'SourceRecordError';
  }
}

/**
 * Where a source's bad records go: thrown (the default), or counted by reason with the first
 * SKIP_LOCATIONS_KEPT locations when skipInvalid is on.
 */
export class SkipCounter {
  private readonly reasons = new Map<string, { count: number; first: string[] }>();
  private count = 0;

  constructor(private readonly skipInvalid: boolean) {}

  /** Throws `err` unless bad records are skipped; then counts it. */
  reject(err: SourceRecordError): void {
    if (!this.skipInvalid) throw err;
    this.count++;
    let r = this.reasons.get(err.reason);
    if (r === undefined) this.reasons.set(err.reason, (r = { count: 0, first: [] }));
    r.count++;
    if (r.first.length < SKIP_LOCATIONS_KEPT) r.first.push(err.where);
  }

  get report(): SkipReport {
    const byReason: Record<string, { count: number; first: string[] }> = {};
    for (const [k, v] of [...this.reasons.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) byReason[k] = { count: v.count, first: [...v.first] };
    return { total: this.count, byReason };
  }
}

/** Two skip reports as one (a source's and a consumer's, e.g. unlabelled records dropped by build-index). */
export function mergeSkips(a: SkipReport, b: SkipReport): SkipReport {
  const byReason: Record<string, { count: number; first: string[] }> = {};
  for (const rep of [a, b]) {
    for (const [k, v] of Object.entries(rep.byReason)) {
      const cur = byReason[k] ?? { count: 0, first: [] };
      cur.count += v.count;
      cur.first = [...cur.first, ...v.first].slice(0, SKIP_LOCATIONS_KEPT);
      byReason[k] = cur;
    }
  }
  return { total: a.total + b.total, byReason };
}
