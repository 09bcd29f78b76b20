import { SortedWindow } from './window.js';
import type { Signals } from './score.js';

export type FlagReason = 'out_of_distribution' | 'ambiguous_neighborhood' | 'low_density';

/** Decides, sample by sample, whether an uncertainty goes to review. */
export interface FlagPolicy {
  /** Records the uncertainty and says whether to flag it. */
  decide(uncertainty: number): boolean;
  /** Short description for logs and records, e.g. "threshold(0.5)". */
  readonly name: string;
}

/** Flags every uncertainty at or above a fixed threshold. */
export class ThresholdPolicy implements FlagPolicy {
  readonly name: string;
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
 * Why a flagged sample is there, from its signals: beyond (nearly) every reference's own
 * neighbourhood is out_of_distribution; neighbours that disagree on the label more than the
 * sample is far from them is ambiguous_neighborhood; otherwise low_density.
 */
export function flagReason(signals: Signals, oodPercentile: number): FlagReason {
  if (signals.densityPercentile >= oodPercentile) return 'out_of_distribution';
  if (signals.labelAgreement !== null && 1 - signals.labelAgreement >= signals.densityPercentile) return 'ambiguous_neighborhood';
  return 'low_density';
}

/** One sentence for the reviewer. */
export function explain(reason: FlagReason, signals: Signals, suggested: string | null): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const further = `further from its neighbours than ${pct(signals.densityPercentile)} of the training references are from theirs`;
  switch (reason) {
    case 'out_of_distribution':
      return `Unlike the training data: ${further}.`;
    case 'ambiguous_neighborhood':
      return signals.labelAgreement === null
        ? `Neighbours disagree.`
        : `Its nearest training references disagree: only ${pct(signals.labelAgreement)} of the weighted vote goes to ${suggested ?? 'the top label'}.`;
    case 'low_density':
      return `In a sparse region: ${further}.`;
  }
}
