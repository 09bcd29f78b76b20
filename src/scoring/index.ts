export { meanDistance, percentileRank } from './density.js';
export { labelVote, voteWeights, VOTE_DISTANCE_EPSILON, type LabelVote } from './labels.js';
export { combineUncertainty, densityScore, referenceScorer, scoreNeighbors, type Score, type ScoreOptions, type Signals } from './score.js';
export { ThresholdPolicy, TargetRatePolicy, flagReason, explain, type FlagPolicy, type FlagReason } from './policy.js';
export { SortedWindow } from './window.js';
export { DriftWindow, DRIFT_QUANTILES, referenceDrift, type DriftQuantile, type DriftSummary } from './drift.js';
