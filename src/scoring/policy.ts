import { ShiftWindow } from './shift-window.js';
import { SortedWindow } from './window.js';
import type { Score } from './score.js';
import type { Signals } from './signals.js';

export type FlagReason = 'out_of_distribution' | 'distribution_shift' | 'ambiguous_neighborhood' | 'low_density' | 'low_predicted_accuracy';

/** Which rule flagged a sample. */
export type FlagRule = 'beyond_references' | 'shifted_window' | 'threshold' | 'target_rate' | 'min_predicted_accuracy';

/** Decides, sample by sample, whether an uncertainty goes to review. */
export interface FlagPolicy {
  /** Records the uncertainty and says whether to flag it. */
  decide(uncertainty: number): boolean;
  /** Short description for logs and records, e.g. "threshold(0.5)". */
  readonly name: string;
  readonly rule: FlagRule;
}

/** Flags every uncertainty at or above a fixed threshold. */
export class ThresholdPolicy implements FlagPolicy {
  readonly name: string;
  readonly rule = 'threshold';
  constructor(private readonly threshold: number) {
    if (!(threshold >= 0 && threshold <= 1)) throw new RangeError('threshold must be in [0, 1]');
    this.name = `threshold(${threshold})`;
  }
  decide(uncertainty: number): boolean {
    return uncertainty >= this.threshold;
  }
}

/**
 * Flags the top `rate` share of a sliding window of recent uncertainties, so that the review
 * queue keeps its size however the traffic drifts. A sample is flagged when its uncertainty
 * exceeds the (1 - rate) quantile of the window before it. Until the window holds
 * `warmup` samples, the fallback threshold decides.
 */
export class TargetRatePolicy implements FlagPolicy {
  readonly name: string;
  readonly rule = 'target_rate';
  private readonly window: SortedWindow;

  constructor(
    private readonly rate: number,
    window: number,
    private readonly fallbackThreshold: number,
    private readonly warmup: number = Math.min(window, 100),
  ) {
    if (!(rate > 0 && rate < 1)) throw new RangeError('rate must be in (0, 1)');
    if (!Number.isInteger(window) || window < 1) throw new RangeError('window must be a positive integer');
    this.window = new SortedWindow(window);
    this.name = `target_rate(${rate}, window ${window})`;
  }

  /** The current flagging cut: the (1 - rate) quantile of the window, or the fallback. */
  cut(): number {
    if (this.window.size < this.warmup) return this.fallbackThreshold;
    return this.window.quantile(1 - this.rate) as number;
  }

  decide(uncertainty: number): boolean {
    const cut = this.cut();
    // Past warm-up a value equal to the cut is not above it; maximal uncertainty is always flagged.
    const flagged = this.window.size < this.warmup ? uncertainty >= cut : uncertainty > cut || uncertainty >= 1;
    this.window.push(uncertainty);
    return flagged;
  }
}

/**
 * Why a flagged sample is there, from its signals: at or beyond the oodPercentile of the
 * references (oodPercentileOf) is out_of_distribution; neighbours that disagree on the label
 * more than the sample is far from them is ambiguous_neighborhood; otherwise low_density.
 */
export function flagReason(signals: Signals, oodPercentile: number): FlagReason {
  if (oodPercentileOf(signals) >= oodPercentile) return 'out_of_distribution';
  if (signals.labelAgreement !== null && 1 - signals.labelAgreement >= signals.densityPercentile) return 'ambiguous_neighborhood';
  return 'low_density';
}

/**
 * How far out of the training distribution a sample lies, as a percentile of the references,
 * from two measures that see different shifts: the kNN density percentile (mean distance to
 * the k nearest references against the references' leave-one-out ones: any region the
 * references do not cover, e.g. a contrast-reduced or rotated image) and, when the bundle
 * has the references' Gaussian, the class-conditional Mahalanobis percentile (against
 * cross-fitted reference distances: far from every class along the directions the classes
 * vary in, e.g. another data set). Without the Gaussian it is the density percentile.
 *
 * The two are combined as Šidák's correction of their maximum: max(p_density, p_mahalanobis)².
 * If each percentile is uniform on in-distribution data and the two are independent, the
 * maximum's CDF is m², so the combined value is again a percentile and `beyondReferences`
 * at percentile P flags a share 1 - P of in-distribution samples; positively dependent
 * measures (as two distances of one embedding are) flag fewer, never more (each flags at
 * √P ≈ 1 - (1 - P)/2, a Bonferroni split). A calibrated maximum would need the references'
 * joint distribution stored in the bundle; this needs nothing beyond the two percentiles, so
 * bundles built before it get the rule too.
 */
export function oodPercentileOf(signals: Signals): number {
  const m = signals.mahalanobisPercentile;
  if (m === null) return signals.densityPercentile;
  const top = Math.max(m, signals.densityPercentile);
  return top * top;
}

/** Which of the two measures of oodPercentileOf puts the sample further out (density without the Gaussian). */
export function oodMeasureOf(signals: Signals): 'density' | 'mahalanobis' {
  const m = signals.mahalanobisPercentile;
  return m !== null && m > signals.densityPercentile ? 'mahalanobis' : 'density';
}

/**
 * The out-of-distribution rule: the sample lies at or beyond the `percentile` of the
 * references (oodPercentileOf; at 1: beyond every reference).
 */
export function beyondReferences(signals: Signals, percentile = 1): boolean {
  return oodPercentileOf(signals) >= percentile;
}

export interface FlagDecision {
  readonly rule: FlagRule;
  readonly reason: FlagReason;
}

export interface FlagRulesOptions {
  /** The uncertainty policy (threshold or target rate). */
  readonly uncertainty: FlagPolicy;
  /**
   * When set, the minimum-predicted-accuracy policy replaces the uncertainty policy: a sample
   * is flagged when its predicted accuracy is below this. A bundle without predicted
   * accuracies (no labels) falls back to the uncertainty policy.
   */
  readonly minPredictedAccuracy: number | null;
  /** Also flag every sample at or beyond oodPercentile of the references (beyondReferences), whatever the policy says. */
  readonly oodRule: boolean;
  /** Out-of-distribution percentile (oodPercentileOf) from which the rule flags and a reason reads out_of_distribution; 1: beyond every reference. */
  readonly oodPercentile: number;
  /**
   * Samples in the stream-level shift window (shift-window.ts): while the mean
   * out-of-distribution percentile of the last this-many samples is above what
   * in-distribution traffic reaches, every sample is flagged (rule shifted_window, reason
   * distribution_shift). 0 or absent: off.
   */
  readonly shiftWindow?: number;
}

/**
 * All of the worker's flagging rules together: the out-of-distribution rule, then the
 * minimum predicted accuracy or the uncertainty policy. The decision says which rule fired
 * and why, for the review record.
 */
export class FlagRules {
  readonly name: string;
  private readonly shift: ShiftWindow | null;
  constructor(private readonly opts: FlagRulesOptions) {
    const min = opts.minPredictedAccuracy;
    if (min !== null && !(min > 0 && min <= 1)) throw new RangeError('minPredictedAccuracy must be in (0, 1]');
    const main = min === null ? opts.uncertainty.name : `min_predicted_accuracy(${min}, else ${opts.uncertainty.name})`;
    this.shift = opts.shiftWindow === undefined || opts.shiftWindow === 0 ? null : new ShiftWindow(opts.shiftWindow);
    const withOod = opts.oodRule ? `${main} + beyond_references(${opts.oodPercentile})` : main;
    this.name = this.shift === null ? withOod : `${withOod} + shifted_window(${this.shift.capacity})`;
  }

  /** The stream-level shift window, when on (for metrics and evaluation). */
  get shiftWindow(): ShiftWindow | null {
    return this.shift;
  }

  decide(score: Pick<Score, 'uncertainty' | 'predictedAccuracy' | 'signals'>): FlagDecision | null {
    const { minPredictedAccuracy: min, oodRule, oodPercentile } = this.opts;
    const ood = oodRule && beyondReferences(score.signals, oodPercentile);
    this.shift?.observe(oodPercentileOf(score.signals));
    const shifted = this.shift?.shifted === true;
    if (min !== null && score.predictedAccuracy !== null) {
      if (ood) return { rule: 'beyond_references', reason: 'out_of_distribution' };
      if (shifted) return { rule: 'shifted_window', reason: 'distribution_shift' };
      return score.predictedAccuracy < min ? { rule: 'min_predicted_accuracy', reason: 'low_predicted_accuracy' } : null;
    }
    // Asked for every sample, so that a target rate's window sees all the traffic.
    const flagged = this.opts.uncertainty.decide(score.uncertainty);
    if (ood) return { rule: 'beyond_references', reason: 'out_of_distribution' };
    if (shifted) return { rule: 'shifted_window', reason: 'distribution_shift' };
    return flagged ? { rule: this.opts.uncertainty.rule, reason: flagReason(score.signals, oodPercentile) } : null;
  }
}

/** One sentence for the reviewer. */
export function explain(reason: FlagReason, signals: Signals, suggested: string | null, predictedAccuracy: number | null = null): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const further = `further from its neighbours than ${pct(signals.densityPercentile)} of the training references are from theirs`;
  switch (reason) {
    case 'out_of_distribution':
      return signals.mahalanobisPercentile === null || oodMeasureOf(signals) === 'density'
        ? `Unlike the training data: ${further}.`
        : `Unlike the training data: farther from the nearest class of the training distribution (Mahalanobis distance) than ${pct(signals.mahalanobisPercentile)} of the training references.`;
    case 'ambiguous_neighborhood':
      return signals.labelAgreement === null
        ? `Neighbours disagree.`
        : `Its nearest training references disagree: only ${pct(signals.labelAgreement)} of the weighted vote goes to ${suggested ?? 'the top label'}.`;
    case 'low_density':
      return `In a sparse region: ${further}.`;
    case 'distribution_shift':
      return `Part of a stream that has moved off the training data: the recent samples lie further out than in-distribution traffic does, taken together (this one: ${further}).`;
    case 'low_predicted_accuracy':
      return `The downstream model is predicted to be right only ${pct(predictedAccuracy ?? 0)} of the time here${signals.labelAgreement === null ? '' : `; ${pct(signals.labelAgreement)} of the neighbours' weighted vote goes to ${suggested ?? 'the top label'}`}.`;
  }
}
