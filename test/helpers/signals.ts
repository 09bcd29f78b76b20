import type { Signals } from '../../src/scoring/index.js';

/** Signals of a sample at these density and Mahalanobis percentiles, the rest fixed and in-distribution. */
export const signalsAt = (densityPercentile: number, mahalanobisPercentile: number | null = null): Signals => ({
  meanKnnDistance: 0.2,
  kthKnnDistance: 0.3,
  densityPercentile,
  relativeDensity: 1,
  relativeDensityPercentile: densityPercentile,
  labelAgreement: 0.9,
  labelEntropy: 0.1,
  kthKnnPercentile: densityPercentile,
  labelMargin: 0.9,
  reverseNeighborConsistency: null,
  mahalanobisPercentile,
  relativeMahalanobisPercentile: mahalanobisPercentile,
  modelConfidence: null,
  modelEntropy: null,
  modelNeighborAgreement: null,
  modelPredictionUsed: null,
  modelGaussianLogOdds: null,
});
