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

/** How well a predicted accuracy matches what happened, on one set. */
export interface CalibrationMetrics {
  readonly mean_predicted_accuracy: number;
  readonly accuracy: number;
  /** Mean squared difference between the predicted accuracy and the 0/1 correctness. */
  readonly brier: number;
  /** Expected calibration error over `bins` equal-count bins of the sorted predictions (tied predictions may straddle two bins): the count-weighted mean of |bin's mean prediction − bin's accuracy|. */
  readonly ece: number;
  readonly bins: number;
}

/** Calibration of per-point predicted accuracies against the 0/1 error. */
export function calibrationMetrics(predicted: ArrayLike<number>, error01: ArrayLike<number>, bins = 10): CalibrationMetrics {
  const n = predicted.length;
  if (n === 0 || error01.length !== n) throw new RangeError('calibrationMetrics needs one error per prediction');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (predicted[a] as number) - (predicted[b] as number));
  let sumP = 0;
  let sumC = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    const p = predicted[i] as number;
    const c = 1 - (error01[i] as number);
    sumP += p;
    sumC += c;
    brier += (p - c) ** 2;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    const lo = Math.floor((b * n) / bins);
    const hi = Math.floor(((b + 1) * n) / bins);
    if (hi <= lo) continue;
    let p = 0;
    let c = 0;
    for (let k = lo; k < hi; k++) {
      const i = order[k] as number;
      p += predicted[i] as number;
      c += 1 - (error01[i] as number);
    }
    ece += Math.abs(p - c);
  }
  return { mean_predicted_accuracy: sumP / n, accuracy: sumC / n, brier: brier / n, ece: ece / n, bins };
}
