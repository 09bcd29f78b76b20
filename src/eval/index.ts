export { trainLinearProbe, accuracy, DEFAULT_PROBE, type LinearProbe, type ProbeOptions } from './linear-probe.js';
export { averageRanks, pearson, spearman, kendallTauB, auroc } from './rank-metrics.js';
export { riskCoverage, binnedAccuracy, type RiskCoverage } from './risk-coverage.js';
export { fprAtTpr, oodMetrics, type OodMetrics } from './ood.js';
export { fitDiagonalGmm, DEFAULT_GMM, type DiagonalGmm, type GmmOptions } from './gmm.js';
export { avgDistance, kthDistance, voteMarginUncertainty, jaccard, ncUncertainty, rowNorms, randomScores, mspUncertainty, predictiveEntropy } from './baselines.js';
export { scoreMetrics, oracleAurc, finiteOrNull, calibrationMetrics, tauWithTiesBroken, type CalibrationMetrics, type ScoreMetrics } from './score-metrics.js';
export {
  evaluateEmbeddings,
  roundResult,
  targetErrors,
  SCORE_NAMES,
  PROBABILITY_SCORES,
  WIDE_K,
  WIDE_EF,
  type DownstreamPredictions,
  type EncodedSets,
  type ErrorTarget,
  type EvaluationDetail,
  type EvaluationInput,
  type EvaluationOptions,
  type EvaluationResult,
  type ScoreName,
} from './evaluate.js';
export { renderReport, SCORE_DESCRIPTIONS, type PlotFiles, type ReportContext } from './report.js';
export { renderPlots, vegaLiteToSvg, PlotsUnavailableError, type VegaLiteSpec } from './plots.js';
export { preNormalisationEmbeddings, preNormalisationTensor, withExtraOutput } from './raw-features.js';
export { fitCombination, DEFAULT_COMBINATION_FIT, type CombinationFitOptions } from './combination-fit.js';
export { pairedBootstrap, unweightedMetrics, BOOTSTRAP_METRICS, DEFAULT_BOOTSTRAP, type BootstrapDelta, type BootstrapMetric, type BootstrapOptions, type PairedBootstrap } from './bootstrap.js';
export { mspComparison, renderMspComparison, COMPARED, type ComparedScore, type MspComparison } from './msp-comparison.js';
export { fitModelCombination, modelCombinationScores, withModelPart, DEFAULT_MODEL_FOLDS, type ModelCombination, type ModelCombinationOptions, type WithModel } from './model-combination.js';
export {
  readPredictions,
  alignPredictions,
  softmax,
  argmax,
  splitCsvLine,
  PROBABILITY_SUM_TOLERANCE,
  type AlignedPredictions,
  type Prediction,
  type PredictionsFile,
  type PredictionsForm,
  type ReadPredictionsOptions,
} from './predictions.js';
