import { auroc, kendallTauB, spearman } from './rank-metrics.js';
import { binnedAccuracy, riskCoverage } from './risk-coverage.js';

/** How well one uncertainty score ranks the downstream errors of the test points. */
export interface ScoreMetrics {
  /** Kendall tau-b between the uncertainty and the 0/1 error; null when undefined (a constant score). */
  readonly kendall_tau: number | null;
  /**
   * Kendall tau-b the score would have, in expectation, with its ties broken at random:
   * (2·AUROC − 1)·√(n₊n₋ / (n(n−1)/2)) for a 0/1 error. Tau-b divides by the pairs not tied
   * in the score, so a score with large ties (a unanimous vote) gets a larger tau-b than a
   * tie-free score with the same AUROC; this puts them on one footing.
   */
  readonly kendall_tau_ties_broken: number | null;
  /** Spearman rho (average ranks) between the uncertainty and the 0/1 error. */
  readonly spearman: number | null;
  /** Misclassification AUROC: errors are the positives. */
  readonly auroc: number | null;
  /** Area under the risk-coverage curve with the 0/1 loss (lower is better). */
  readonly aurc: number;
  /** Probe accuracy per uncertainty decile, most certain decile first. */
  readonly decile_accuracy: number[];
  /** The same rank correlations against the Brier score of the probe's probabilities. */
  readonly kendall_tau_brier: number | null;
  readonly spearman_brier: number | null;
}

/** NaN (an undefined statistic) as null, so that it survives JSON. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** See ScoreMetrics.kendall_tau_ties_broken. */
export function tauWithTiesBroken(aurocValue: number, error01: ArrayLike<number>): number {
  const n = error01.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += error01[i] as number;
  const pairs = (n * (n - 1)) / 2;
  return (2 * aurocValue - 1) * Math.sqrt((positives * (n - positives)) / pairs);
}

export function scoreMetrics(uncertainty: ArrayLike<number>, error01: ArrayLike<number>, brier: ArrayLike<number>): ScoreMetrics {
  const correct = Float64Array.from(error01, (e) => 1 - e);
  const a = auroc(uncertainty, error01);
  return {
    kendall_tau: finiteOrNull(kendallTauB(uncertainty, error01)),
    kendall_tau_ties_broken: finiteOrNull(tauWithTiesBroken(a, error01)),
    spearman: finiteOrNull(spearman(uncertainty, error01)),
    auroc: finiteOrNull(a),
    aurc: riskCoverage(uncertainty, error01).aurc,
    decile_accuracy: binnedAccuracy(uncertainty, correct, 10),
    kendall_tau_brier: finiteOrNull(kendallTauB(uncertainty, brier)),
    spearman_brier: finiteOrNull(spearman(uncertainty, brier)),
  };
}

/** The best AURC reachable with this error vector (all errors ranked last), for reference. */
export function oracleAurc(error01: ArrayLike<number>): number {
  return riskCoverage(error01, error01).aurc;
}
