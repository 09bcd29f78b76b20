/**
 * Selective prediction: keep the samples the score is most certain about and look at the
 * risk (mean loss) of what is kept. Samples with equal uncertainty cannot be ordered by the
 * score, so every quantity here is its expectation over the orders of tied samples: a tied
 * group contributes its mean loss per position. A constant score therefore gets the flat
 * curve at the overall risk, whatever order the samples came in.
 */

export interface RiskCoverage {
  /** Coverage i / n for i = 1..n (most certain first). */
  readonly coverage: Float64Array;
  /** Expected mean loss of the i most certain samples. */
  readonly risk: Float64Array;
  /** Area under the risk-coverage curve: the mean of `risk` (Geifman et al.); lower is better. */
  readonly aurc: number;
}

/**
 * Per sorted position, the expected loss of the sample there: samples sorted by ascending
 * uncertainty, each tied group replaced by its mean loss.
 */
function expectedLossBySortedPosition(uncertainty: ArrayLike<number>, loss: ArrayLike<number>): Float64Array {
  const n = uncertainty.length;
  if (loss.length !== n) throw new RangeError(`lengths differ: ${n} and ${loss.length}`);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (uncertainty[a] as number) - (uncertainty[b] as number) || a - b);
  const out = new Float64Array(n);
  let i = 0;
  while (i < n) {
    const u = uncertainty[order[i] as number] as number;
    let j = i;
    let sum = 0;
    while (j < n && uncertainty[order[j] as number] === u) sum += loss[order[j++] as number] as number;
    out.fill(sum / (j - i), i, j);
    i = j;
  }
  return out;
}

/** The risk-coverage curve of an uncertainty (higher = less certain) against a per-sample loss. */
export function riskCoverage(uncertainty: ArrayLike<number>, loss: ArrayLike<number>): RiskCoverage {
  const n = uncertainty.length;
  if (n === 0) throw new RangeError('riskCoverage needs at least one sample');
  const expected = expectedLossBySortedPosition(uncertainty, loss);
  const coverage = new Float64Array(n);
  const risk = new Float64Array(n);
  let cum = 0;
  let area = 0;
  for (let i = 0; i < n; i++) {
    cum += expected[i] as number;
    coverage[i] = (i + 1) / n;
    risk[i] = cum / (i + 1);
    area += risk[i] as number;
  }
  return { coverage, risk, aurc: area / n };
}

/**
 * Accuracy per uncertainty bin of equal size (deciles by default), from the most certain bin
 * to the least: bin b holds sorted positions [floor(b n / bins), floor((b + 1) n / bins)).
 */
export function binnedAccuracy(uncertainty: ArrayLike<number>, correct: ArrayLike<number>, bins = 10): number[] {
  const n = uncertainty.length;
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError('bins must be a positive integer');
  if (n < bins) throw new RangeError(`need at least ${bins} samples for ${bins} bins`);
  const expected = expectedLossBySortedPosition(uncertainty, correct);
  const out: number[] = [];
  for (let b = 0; b < bins; b++) {
    const lo = Math.floor((b * n) / bins);
    const hi = Math.floor(((b + 1) * n) / bins);
    let s = 0;
    for (let i = lo; i < hi; i++) s += expected[i] as number;
    out.push(s / (hi - lo));
  }
  return out;
}
