import type { ReferenceStats } from '../index/index.js';
import { percentileRank } from './density.js';
import { SortedWindow } from './window.js';

/** Uncertainty quantiles reported for the stream window and for the references. */
export const DRIFT_QUANTILES = [0.5, 0.9, 0.99] as const;
export type DriftQuantile = (typeof DRIFT_QUANTILES)[number];

/** Label-free distribution summary of a set of samples, comparable between stream and references. */
export interface DriftSummary {
  /** How many samples it summarises. */
  readonly samples: number;
  /** Share of samples whose out-of-distribution percentile (see policy.ts oodPercentileOf) is at or above the cut. */
  readonly oodRatio: number;
  /** Uncertainty quantiles; a value is undefined when it cannot be known (empty window, uncalibrated bundle). */
  readonly uncertainty: Readonly<Record<DriftQuantile, number | undefined>>;
}

/**
 * The last `capacity` scored samples of the stream, summarised the same way as the references
 * summarise themselves (`referenceDrift`), so that a shift of the input shows as a gap between
 * the two before any label arrives.
 */
export class DriftWindow {
  private readonly density: SortedWindow;
  private readonly uncertainty: SortedWindow;

  constructor(
    capacity: number,
    private readonly oodPercentile: number,
  ) {
    this.density = new SortedWindow(capacity);
    this.uncertainty = new SortedWindow(capacity);
  }

  /** `oodPercentile`: the sample's oodPercentileOf (its Mahalanobis or density percentile). */
  observe(oodPercentile: number, uncertainty: number): void {
    this.density.push(oodPercentile);
    this.uncertainty.push(uncertainty);
  }

  summary(): DriftSummary {
    return {
      samples: this.density.size,
      oodRatio: this.density.shareAtLeast(this.oodPercentile),
      uncertainty: quantileRecord((p) => this.uncertainty.quantile(p)),
    };
  }
}

/**
 * The same summary for the references themselves, from the bundle's statistics: each stored
 * quantile of the references' out-of-distribution measure (`oodQuantiles`: the class
 * Mahalanobis distance quantiles of a bundle with a Gaussian, else the leave-one-out mean kNN
 * distance) stands for an equal share of them, and goes through the same percentile mapping
 * a streamed sample does. With a calibrated bundle
 * the uncertainty quantiles come out near p by construction; they are computed rather than
 * assumed so that a different calibration keeps the baseline true.
 */
export function referenceDrift(stats: ReferenceStats, oodPercentile: number, oodQuantiles: readonly number[] = stats.looMeanKnnQuantiles): DriftSummary {
  const dens = oodQuantiles;
  let beyond = 0;
  for (const v of dens) if (percentileRank(v, dens) >= oodPercentile) beyond++;
  const scores = stats.looScoreQuantiles;
  return {
    samples: dens.length,
    oodRatio: dens.length === 0 ? 0 : beyond / dens.length,
    uncertainty: quantileRecord((p) => {
      if (scores === null || scores.length === 0) return undefined;
      const raw = scores[Math.min(scores.length - 1, Math.floor(p * scores.length))] as number;
      return percentileRank(raw, scores);
    }),
  };
}

function quantileRecord(f: (p: number) => number | undefined): Record<DriftQuantile, number | undefined> {
  return { 0.5: f(0.5), 0.9: f(0.9), 0.99: f(0.99) };
}
