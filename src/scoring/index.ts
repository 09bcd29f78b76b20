export { meanDistance, percentileRank } from './density.js';
export { labelVote, voteWeights, VOTE_DISTANCE_EPSILON, type LabelVote } from './labels.js';
export { bundleScoreOptions, combineUncertainty, computeSignals, densityScore, referenceScorer, reverseNeighborConsistency, scoreNeighbors, type Score, type ScoreOptions, type ScoringBundle, type Signals } from './score.js';
export {
  COMBINATION_FEATURES,
  COMBINATION_FEATURE_NAMES,
  applyIsotonic,
  checkCombination,
  combinedErrorProbability,
  errorProbabilityOfFeatures,
  featureVector,
  fitIsotonicAccuracy,
  fitLogistic,
  sigmoid,
  type CombinationFeature,
  type IsotonicMap,
  type LogisticFit,
} from './combine.js';
export {
  FlagRules,
  ThresholdPolicy,
  TargetRatePolicy,
  beyondReferences,
  oodPercentileOf,
  oodMeasureOf,
  flagReason,
  explain,
  type FlagDecision,
  type FlagPolicy,
  type FlagReason,
  type FlagRule,
  type FlagRulesOptions,
} from './policy.js';
export { SortedWindow } from './window.js';
export { ShiftWindow, SHIFT_MIN_MEAN, SHIFT_WINDOW_Z } from './shift-window.js';
export { DriftWindow, DRIFT_QUANTILES, referenceDrift, type DriftQuantile, type DriftSummary } from './drift.js';
export { jaccard, ncUncertainty, viewJaccard, viewDispersion } from './consistency.js';
export { cholesky, fitGaussian, forwardSubstitute, invertLower, mahalanobis, packLower, type GaussianFitOptions, type MahalanobisDistances } from './gaussian.js';
export { MODEL_FEATURE_NAMES, MODEL_FEATURES, gaussianLogOdds, isModelFeature, modelFeatureVector, modelSignals, predictionSummary, softmax, type ModelFeature, type ModelPrediction, type ModelSignals } from './model-signals.js';
