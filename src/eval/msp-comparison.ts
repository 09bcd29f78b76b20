import { DEFAULT_BOOTSTRAP, pairedBootstrap, type BootstrapOptions, type PairedBootstrap } from './bootstrap.js';

/**
 * The comparison a user with a downstream classifier makes first: qualm against that model's
 * own maximum softmax probability (MSP). For each of `COMPARED` present beside `msp`, the
 * differences score − msp in error AUROC (higher is better), AURC (lower is better) and
 * Kendall tau-b, each with a paired-bootstrap 95% interval over the test points.
 */

/** The scores compared with msp, when present. */
export const COMPARED = ['qualm', 'qualm_with_model', 'entropy'] as const;
export type ComparedScore = (typeof COMPARED)[number];

export interface MspComparison {
  readonly against: 'msp';
  readonly resamples: number;
  readonly seed: number;
  readonly pairs: Partial<Record<ComparedScore, PairedBootstrap>>;
}

export function mspComparison(test: Readonly<Partial<Record<string, ArrayLike<number>>>>, error01: ArrayLike<number>, opts: BootstrapOptions = {}): MspComparison | null {
  const msp = test.msp;
  if (msp === undefined) return null;
  const pairs: Partial<Record<ComparedScore, PairedBootstrap>> = {};
  for (const name of COMPARED) {
    const u = test[name];
    if (u !== undefined) pairs[name] = pairedBootstrap(u, msp, error01, opts);
  }
  return { against: 'msp', resamples: opts.resamples ?? DEFAULT_BOOTSTRAP.resamples, seed: opts.seed ?? DEFAULT_BOOTSTRAP.seed, pairs };
}

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}

/** The verdict of one difference: which side the whole interval lies on. */
function verdict(name: string, lo: number, hi: number, higherIsBetter: boolean): string {
  if (lo > 0) return higherIsBetter ? `${name} better` : 'msp better';
  if (hi < 0) return higherIsBetter ? 'msp better' : `${name} better`;
  return 'tie (the interval holds 0)';
}

/** The report's section on the comparison (Markdown lines). */
export function renderMspComparison(c: MspComparison | null, whose: string): string[] {
  if (c === null) return [];
  const lines = [
    `## Against ${whose} own confidence (MSP)`,
    '',
    `Differences score − msp on the test set, with 95% intervals from a paired bootstrap over the test points (${c.resamples} resamples, seed ${c.seed}). AUROC and tau: positive means the score ranks the errors better; AURC: negative means better.`,
    '',
    '| score | Δ AUROC [95% CI] | | Δ AURC [95% CI] | | Δ tau [95% CI] | |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [name, p] of Object.entries(c.pairs)) {
    const cell = (m: 'auroc' | 'aurc' | 'kendall_tau', higher: boolean): string =>
      `${fmt(p[m].delta)} [${fmt(p[m].ci95[0])}, ${fmt(p[m].ci95[1])}] | ${verdict(name, p[m].ci95[0], p[m].ci95[1], higher)}`;
    lines.push(`| ${name} | ${cell('auroc', true)} | ${cell('aurc', false)} | ${cell('kendall_tau', true)} |`);
  }
  lines.push('');
  return lines;
}
