import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, loadCurrentBundle, type IndexSnapshot } from '../index/index.js';
import { bundleScoreOptions, combineUncertainty, densityScore, mahalanobis, oodPercentileOf, referenceScorer, scoreNeighbors } from '../scoring/index.js';
import { fitCombination, type CombinationFitOptions } from './combination-fit.js';
import { avgDistance, kthDistance, mspUncertainty, ncUncertainty, predictiveEntropy, randomScores, rowNorms, voteMarginUncertainty } from './baselines.js';
import { DEFAULT_GMM, fitDiagonalGmm, type GmmOptions } from './gmm.js';
import { DEFAULT_PROBE, accuracy, trainLinearProbe, type ProbeOptions } from './linear-probe.js';
import { oodMetrics, type OodMetrics } from './ood.js';
import { riskCoverage } from './risk-coverage.js';
import { calibrationMetrics, oracleAurc, scoreMetrics, type CalibrationMetrics, type ScoreMetrics } from './score-metrics.js';
import { DEFAULT_FLAGGING, evaluateShifts, oodRuleSummary, type FlaggingSettings, type OodRuleSummary, type ShiftInput, type ShiftReport } from './shifts.js';
import { fitModelCombination, modelCombinationScores, withModelPart, type ModelCombination } from './model-combination.js';
import { mspComparison, type MspComparison } from './msp-comparison.js';

/** The scores every evaluation reports, in report order. */
export const SCORE_NAMES = ['qualm', 'qualm_with_model', 'qualm_ood', 'qualm_label_free', 'reverse_neighbor', 'mahalanobis', 'relative_mahalanobis', 'avgdist_k1', 'avgdist_k100', 'kth_distance', 'gmm_ll', 'l2_norm', 'vote_margin', 'nc', 'msp', 'entropy', 'random'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];
/**
 * The scores that need the ranked model's probabilities (test set only): its own confidence,
 * and qualm's combination with it. Present for the probe, and for a predictions file that
 * carries probabilities; absent with label-only predictions.
 */
export const PROBABILITY_SCORES = ['qualm_with_model', 'msp', 'entropy'] as const satisfies readonly ScoreName[];

/** Whose errors the evaluation ranks: its own softmax probe's, or the user's downstream model's. */
export type ErrorTarget = 'probe' | 'predictions';

/** The user's downstream model's predictions on the test set, one per test point in test order. */
export interface DownstreamPredictions {
  /** Predicted label index per test point (the references' label order). */
  readonly labels: ArrayLike<number>;
  /** Probabilities, row-major [n_test, labels]; null when only labels were given. */
  readonly probs: Float64Array | null;
  /** Where they came from (a path), for the result. */
  readonly source: string;
}

/** Neighbours for AvgDist_100 and NC (repreli's k_list is {1, 100}). */
export const WIDE_K = 100;
/** HNSW ef for the k = 100 queries (at least WIDE_K). */
export const WIDE_EF = 400;
/** Test points whose HNSW k = 100 neighbours are checked against exact search. */
export const RECALL_CHECK_POINTS = 200;

/** One encoder's embeddings of the three sets (rows L2-normalised, as the worker sees them). */
export interface EncodedSets {
  readonly name: string;
  readonly sha256: string;
  readonly ref: Float32Array;
  readonly test: Float32Array;
  readonly ood: Float32Array | null;
  /**
   * The un-normalised model output of the test (and OOD) rows, for the L2-norm baseline; when
   * absent the baseline uses the rows above, whose norm is 1 (degenerate).
   */
  readonly raw?: { readonly test: Float32Array; readonly ood: Float32Array | null; readonly dim: number; readonly tensor: string };
}

export interface EvaluationInput {
  readonly setup: string;
  readonly dim: number;
  /** The first encoder is the one evaluated; the others only enter NC. */
  readonly encoders: readonly EncodedSets[];
  readonly refIds: readonly string[];
  readonly refLabels: ArrayLike<number>;
  readonly testLabels: ArrayLike<number>;
  readonly labelNames: readonly string[];
  /** The worker's k (QUALM_K), density weight and query ef. */
  readonly k: number;
  readonly densityWeight: number;
  readonly efSearch: number;
  readonly probe?: ProbeOptions;
  readonly gmm?: GmmOptions;
  readonly randomSeed?: number;
  /** How the combination is fitted on the references (build-index's defaults when absent). */
  readonly combinationFit?: CombinationFitOptions;
  /** The downstream model's predictions: when given, its errors are ranked instead of the probe's. */
  readonly predictions?: DownstreamPredictions;
  /** The worker's flagging settings the OOD rule and the shifts are measured with (DEFAULT_FLAGGING when absent). */
  readonly flagging?: FlaggingSettings;
  /** Shifted copies of test rows (evaluate --shifts), embedded by the first encoder. */
  readonly shifts?: ShiftInput;
}

export interface EvaluationOptions {
  readonly onProgress?: (phase: string, done: number, total: number) => void;
  readonly signal?: AbortSignal;
  /** Where the temporary bundles go (default: the OS temp dir); removed at the end. */
  readonly workDir?: string;
}

/** The machine-readable result: the JSON line of `qualm evaluate --json`. */
export interface EvaluationResult {
  readonly setup: string;
  readonly n_ref: number;
  readonly n_test: number;
  readonly n_ood: number;
  readonly encoders: readonly string[];
  readonly k: number;
  readonly wide_k: number;
  /** Whose 0/1 errors the scores are ranked against. */
  readonly target: ErrorTarget;
  /** Where the ranked predictions came from: the probe, or the predictions file. */
  readonly target_source: string;
  /** Test accuracy of the target (the probe's, or the downstream model's). */
  readonly downstream_accuracy: number;
  readonly probe_accuracy: number;
  readonly probe_train_accuracy: number;
  /** Error rate of the target on the test set. */
  readonly test_error_rate: number;
  /** Mean Brier score of the target's probabilities (a label-only prediction counts as one-hot). */
  readonly mean_brier: number;
  /** AURC of a score that ranks every error last: the floor any score can reach. */
  readonly oracle_aurc: number;
  /** Share of the exact 100 nearest references the HNSW search returned, on a sample of test points. */
  readonly hnsw_recall_at_100: number;
  /** Which embedding the l2_norm baseline measured: the model's tensor before L2 normalisation, or the normalised output. */
  readonly l2_norm_of: string;
  readonly gmm: { readonly components: number; readonly iterations: number; readonly converged: boolean; readonly seconds: number };
  /** The combination fitted on the references (features, standardised weights, split sizes, held-out AUROC), or why none was. */
  readonly combination: Record<string, unknown>;
  /** qualm's predicted_accuracy against the probe's test errors (null when the bundle predicts none). */
  readonly calibration: CalibrationMetrics | null;
  readonly scores: Partial<Record<ScoreName, ScoreMetrics>>;
  readonly ood: Partial<Record<ScoreName, OodMetrics>>;
  /** Share of the held-out in-distribution test set the out-of-distribution rule flags (nominal 1 − QUALM_OOD_PERCENTILE). */
  readonly ood_rule_in_distribution_rate: number;
  readonly ood_rule: OodRuleSummary;
  /** evaluate --shifts: every shifted set against its clean rows. */
  readonly shifts?: ShiftReport;
  /** The combination with the model's signals behind qualm_with_model (eval/model-combination.ts), or why none was fitted. */
  readonly model_combination: Record<string, unknown>;
  /** qualm and qualm_with_model against msp: differences with paired-bootstrap 95% intervals (eval/msp-comparison.ts); null without probabilities. */
  readonly msp_comparison: MspComparison | null;
  /** qualm_with_model − msp in error AUROC with its 95% interval; null without both. */
  readonly delta_vs_msp: { readonly auroc: number; readonly ci95: readonly [number, number] } | null;
}

/** What the report and the plots need beyond the JSON. */
export interface EvaluationDetail {
  readonly result: EvaluationResult;
  readonly test: Partial<Record<ScoreName, Float64Array>>;
  readonly ood: Partial<Record<ScoreName, Float64Array>>;
  readonly error01: Float64Array;
  readonly riskCurves: Partial<Record<ScoreName, { coverage: Float64Array; risk: Float64Array }>>;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new Error('evaluation cancelled');
}

function rows(x: Float32Array, dim: number): number {
  if (x.length % dim !== 0) throw new RangeError(`embedding length ${x.length} is not a multiple of ${dim}`);
  return x.length / dim;
}

/** Exact k nearest rows of `q` among `ref` by cosine distance (rows unit-norm), ascending. */
function exactKnn(ref: Float32Array, n: number, dim: number, q: Float32Array, k: number): number[] {
  const dist = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += (ref[r * dim + d] as number) * (q[d] as number);
    dist[r] = 1 - dot;
  }
  return Array.from({ length: n }, (_, i) => i)
    .sort((a, b) => (dist[a] as number) - (dist[b] as number) || a - b)
    .slice(0, k);
}

interface SetScores {
  qualm: Float64Array;
  qualm_ood: Float64Array;
  /** Null without the bundle's Gaussian. */
  mahalanobis: Float64Array | null;
  relative_mahalanobis: Float64Array | null;
  qualm_label_free: Float64Array;
  reverse_neighbor: Float64Array;
  avgdist_k1: Float64Array;
  avgdist_k100: Float64Array;
  kth_distance: Float64Array;
  vote_margin: Float64Array;
  /** Each test point's WIDE_K neighbour ids, for NC. */
  wideIds: string[][];
  /** The worker's predicted accuracy per point (NaN where it has none). */
  predictedAccuracy: Float64Array;
}

/**
 * The 0/1 error and the Brier score of predicted labels (and their probabilities, row-major
 * [n, numLabels]; without them the prediction counts as one-hot) against the true labels.
 */
export function targetErrors(pred: ArrayLike<number>, probs: ArrayLike<number> | null, labels: ArrayLike<number>, numLabels: number): { error01: Float64Array; brier: Float64Array } {
  const n = labels.length;
  const error01 = new Float64Array(n);
  const brier = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    const p = pred[i] as number;
    error01[i] = p === y ? 0 : 1;
    let b = 0;
    for (let c = 0; c < numLabels; c++) b += ((probs === null ? (c === p ? 1 : 0) : (probs[i * numLabels + c] as number)) - (c === y ? 1 : 0)) ** 2;
    brier[i] = b;
  }
  return { error01, brier };
}

/** The neighbour-based scores of the first encoder on one set, through the worker's own path. */
function neighbourScores(snap: IndexSnapshot, z: Float32Array, dim: number, efSearch: number, numLabels: number, progress: (done: number) => void): SetScores {
  const n = rows(z, dim);
  const opts = bundleScoreOptions(snap);
  const out: SetScores = {
    qualm: new Float64Array(n),
    qualm_ood: new Float64Array(n),
    mahalanobis: snap.gaussian === undefined ? null : new Float64Array(n),
    relative_mahalanobis: snap.gaussian === undefined ? null : new Float64Array(n),
    qualm_label_free: new Float64Array(n),
    predictedAccuracy: new Float64Array(n),
    reverse_neighbor: new Float64Array(n),
    avgdist_k1: new Float64Array(n),
    avgdist_k100: new Float64Array(n),
    kth_distance: new Float64Array(n),
    vote_margin: new Float64Array(n),
    wideIds: [],
  };
  const k = snap.stats.k;
  // Exactly the worker's query: k = the bundle's k at the worker's ef.
  snap.setEfSearch(efSearch);
  for (let i = 0; i < n; i++) {
    const row = z.subarray(i * dim, (i + 1) * dim);
    const nb = snap.search(row);
    const score = scoreNeighbors(nb, snap.stats, opts, row);
    out.qualm[i] = score.uncertainty;
    out.predictedAccuracy[i] = score.predictedAccuracy ?? NaN;
    out.qualm_ood[i] = oodPercentileOf(score.signals);
    if (snap.gaussian !== undefined && out.mahalanobis !== null && out.relative_mahalanobis !== null) {
      const m = mahalanobis(snap.gaussian.params, row);
      out.mahalanobis[i] = m.classDistance;
      out.relative_mahalanobis[i] = m.relative;
    }
    // What an unlabelled bundle would publish (before its calibration, which is monotone).
    out.qualm_label_free[i] = combineUncertainty(densityScore(score.signals.densityPercentile, score.signals.relativeDensityPercentile), null, snap.densityWeight);
    out.reverse_neighbor[i] = 1 - (score.signals.reverseNeighborConsistency ?? 0);
    out.kth_distance[i] = kthDistance(nb.distances, k);
    out.vote_margin[i] = nb.labels === null ? 1 : voteMarginUncertainty(nb.labels, nb.distances, numLabels);
    if (i % 500 === 0) progress(i / 2);
  }
  snap.setEfSearch(WIDE_EF);
  for (let i = 0; i < n; i++) {
    const nb = snap.search(z.subarray(i * dim, (i + 1) * dim), WIDE_K);
    out.avgdist_k1[i] = avgDistance(nb.distances, 1);
    out.avgdist_k100[i] = avgDistance(nb.distances, WIDE_K);
    out.wideIds.push([...nb.ids]);
    if (i % 500 === 0) progress(n / 2 + i / 2);
  }
  progress(n);
  return out;
}

function wideIds(snap: IndexSnapshot, z: Float32Array, dim: number): string[][] {
  const n = rows(z, dim);
  snap.setEfSearch(WIDE_EF);
  const out: string[][] = [];
  for (let i = 0; i < n; i++) out.push([...snap.search(z.subarray(i * dim, (i + 1) * dim), WIDE_K).ids]);
  return out;
}

/**
 * The whole evaluation on embeddings already computed: a bundle per encoder over the
 * references (the real build path, in a temporary directory), the probe and its errors, every
 * score on the test (and out-of-distribution) set, and their metrics.
 */
export async function evaluateEmbeddings(input: EvaluationInput, opts: EvaluationOptions = {}): Promise<EvaluationDetail> {
  const progress = opts.onProgress ?? (() => undefined);
  const dim = input.dim;
  const signal = opts.signal;
  const first = input.encoders[0];
  if (first === undefined) throw new RangeError('evaluation needs at least one encoder');
  const nRef = rows(first.ref, dim);
  const nTest = rows(first.test, dim);
  const nOod = first.ood === null ? 0 : rows(first.ood, dim);
  if (input.refIds.length !== nRef || input.refLabels.length !== nRef || input.testLabels.length !== nTest) throw new RangeError('evaluation: ids/labels do not match the embeddings');
  const numLabels = input.labelNames.length;

  // The downstream probe, on the first encoder's reference embeddings.
  checkAborted(signal);
  progress('probe', 0, 1);
  const probe = trainLinearProbe(first.ref, input.refLabels, nRef, dim, numLabels, input.probe ?? DEFAULT_PROBE, signal);
  const probePred = probe.predict(first.test, nTest);
  const probeAccuracy = nTest === 0 ? NaN : accuracy(probePred, input.testLabels);
  const downstream = input.predictions;
  if (downstream !== undefined && (downstream.labels.length !== nTest || (downstream.probs !== null && downstream.probs.length !== nTest * numLabels))) {
    throw new RangeError('evaluation: the predictions do not match the test set');
  }
  const { error01, brier } =
    downstream === undefined
      ? targetErrors(probePred, probe.predictProba(first.test, nTest), input.testLabels, numLabels)
      : targetErrors(downstream.labels, downstream.probs, input.testLabels, numLabels);
  const probeTrainAccuracy = accuracy(probe.predict(first.ref, nRef), input.refLabels);
  progress('probe', 1, 1);

  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'qualm-evaluate-'));
  const snaps: IndexSnapshot[] = [];
  try {
    // One bundle per encoder over the same reference ids; the first one fitted and calibrated like build-index does.
    const combinationNotes: string[] = [];
    let withModel: ModelCombination | null = null;
    const scoreOpts = { densityWeight: input.densityWeight, numLabels };
    for (const [e, enc] of input.encoders.entries()) {
      checkAborted(signal);
      const dir = join(work, `bundle-${e}`);
      await buildBundle(
        dir,
        {
          embeddings: enc.ref,
          dim,
          ids: input.refIds,
          labels: Array.from(input.refLabels),
          labelNames: input.labelNames,
          model: { name: enc.name, version: 'evaluate', sha256: enc.sha256 },
          source: { setup: input.setup, purpose: 'qualm evaluate' },
          k: input.k,
          densityWeight: input.densityWeight,
          ...(e === 0
            ? {
                referenceScore: referenceScorer(scoreOpts),
                fitScoring: async (loo, sig) => {
                  const fitOpts = { ...input.combinationFit, ...(input.probe === undefined ? {} : { probe: input.probe }) };
                  const fit = await fitCombination(loo, { ...fitOpts, onSkip: (reason) => combinationNotes.push(reason) }, sig);
                  withModel = await fitModelCombination(loo, fit, { ...fitOpts, labelNames: input.labelNames, onSkip: (reason) => combinationNotes.push(reason) }, sig);
                  return withModelPart(fit, withModel);
                },
              }
            : {}),
        },
        { onProgress: (phase, done, total) => progress(`bundle ${e + 1} ${phase}`, done, total), signal },
      );
      snaps.push(await loadCurrentBundle(dir, { efSearch: input.efSearch }));
    }
    const snap = snaps[0] as IndexSnapshot;

    // Neighbour scores of the first encoder, on the test set and the OOD set.
    checkAborted(signal);
    const testN = neighbourScores(snap, first.test, dim, input.efSearch, numLabels, (d) => progress('score test', d, nTest));
    const oodN = first.ood === null ? null : neighbourScores(snap, first.ood, dim, input.efSearch, numLabels, (d) => progress('score ood', d, nOod));

    // HNSW recall of the k = 100 queries against exact search, on the first test points.
    const checkN = Math.min(RECALL_CHECK_POINTS, nTest);
    let hit = 0;
    for (let i = 0; i < checkN; i++) {
      const exact = new Set(exactKnn(first.ref, nRef, dim, first.test.subarray(i * dim, (i + 1) * dim), WIDE_K).map((r) => input.refIds[r] as string));
      for (const id of testN.wideIds[i] as string[]) if (exact.has(id)) hit++;
    }
    const recall = checkN === 0 ? NaN : hit / (checkN * Math.min(WIDE_K, nRef));

    // NC across encoders over the same reference ids.
    let ncTest: Float64Array | null = null;
    let ncOod: Float64Array | null = null;
    if (input.encoders.length >= 2) {
      const testIds: string[][][] = [testN.wideIds];
      const oodIds: string[][][] = oodN === null ? [] : [oodN.wideIds];
      for (let e = 1; e < input.encoders.length; e++) {
        checkAborted(signal);
        progress(`nc encoder ${e + 1}`, 0, 1);
        const enc = input.encoders[e] as EncodedSets;
        testIds.push(wideIds(snaps[e] as IndexSnapshot, enc.test, dim));
        if (oodN !== null && enc.ood !== null) oodIds.push(wideIds(snaps[e] as IndexSnapshot, enc.ood, dim));
        progress(`nc encoder ${e + 1}`, 1, 1);
      }
      ncTest = Float64Array.from({ length: nTest }, (_, i) => ncUncertainty(testIds.map((s) => s[i] as string[])));
      if (oodN !== null && oodIds.length === input.encoders.length) ncOod = Float64Array.from({ length: nOod }, (_, i) => ncUncertainty(oodIds.map((s) => s[i] as string[])));
    }

    // GMM log-likelihood on the first encoder's references.
    checkAborted(signal);
    progress('gmm fit', 0, 1);
    const g0 = Date.now();
    const gmm = fitDiagonalGmm(first.ref, nRef, dim, input.gmm ?? DEFAULT_GMM, signal);
    const gmmSeconds = (Date.now() - g0) / 1000;
    progress('gmm fit', 1, 1);
    const negate = (x: Float64Array): Float64Array => x.map((v) => -v);
    // Without the pre-normalisation tensor the rows are L2-normalised: their norm is 1 up to
    // float32 rounding, which rounding to 6 digits removes, so the baseline shows as the constant it is.
    const raw = first.raw;
    const l2 = (z: Float32Array, d: number, round: boolean): Float64Array =>
      negate(rowNorms(z, rows(z, d), d).map((v) => (round ? Math.round(v * 1e6) / 1e6 : v)));
    const l2Test = raw === undefined ? l2(first.test, dim, true) : l2(raw.test, raw.dim, false);
    const l2Ood = first.ood === null ? null : raw !== undefined && raw.ood !== null ? l2(raw.ood, raw.dim, false) : l2(first.ood, dim, true);
    const rnd = randomScores(nTest + nOod, input.randomSeed ?? 1);

    // Every score of one set (test or OOD), oriented as uncertainty.
    // The downstream model's own confidence, where it gave probabilities (test points only).
    // The probe's probabilities, or the predictions file's: MSP, entropy and qualm_with_model.
    const targetProbs = downstream === undefined ? probe.predictProba(first.test, nTest) : downstream.probs;
    const fittedWithModel = withModel as ModelCombination | null;
    const probScores: Partial<Record<ScoreName, Float64Array>> =
      targetProbs === null
        ? {}
        : {
            ...(fittedWithModel === null ? {} : { qualm_with_model: modelCombinationScores(snap, first.test, dim, input.efSearch, targetProbs, numLabels) }),
            msp: mspUncertainty(targetProbs, nTest, numLabels),
            entropy: predictiveEntropy(targetProbs, nTest, numLabels),
          };
    const scoresOf = (
      n: SetScores,
      z: Float32Array,
      count: number,
      l2s: Float64Array,
      nc: Float64Array | null,
      random: Float64Array,
      own: Partial<Record<ScoreName, Float64Array>>,
    ): Partial<Record<ScoreName, Float64Array>> => ({
      qualm: n.qualm,
      qualm_ood: n.qualm_ood,
      ...(n.mahalanobis === null ? {} : { mahalanobis: n.mahalanobis }),
      ...(n.relative_mahalanobis === null ? {} : { relative_mahalanobis: n.relative_mahalanobis }),
      qualm_label_free: n.qualm_label_free,
      reverse_neighbor: n.reverse_neighbor,
      avgdist_k1: n.avgdist_k1,
      avgdist_k100: n.avgdist_k100,
      kth_distance: n.kth_distance,
      gmm_ll: negate(gmm.logLikelihood(z, count)),
      l2_norm: l2s,
      vote_margin: n.vote_margin,
      ...(nc === null ? {} : { nc }),
      ...own,
      random,
    });
    const test = scoresOf(testN, first.test, nTest, l2Test, ncTest, rnd.subarray(0, nTest), probScores);
    const ood = oodN !== null && first.ood !== null && l2Ood !== null ? scoresOf(oodN, first.ood, nOod, l2Ood, ncOod, rnd.subarray(nTest), {}) : {};

    progress('metrics', 0, 1);
    const scores: Partial<Record<ScoreName, ScoreMetrics>> = {};
    const oodOut: Partial<Record<ScoreName, OodMetrics>> = {};
    const riskCurves: EvaluationDetail['riskCurves'] = {};
    for (const name of SCORE_NAMES) {
      const u = test[name];
      if (u === undefined) continue;
      scores[name] = scoreMetrics(u, error01, brier);
      const rc = riskCoverage(u, error01);
      riskCurves[name] = { coverage: rc.coverage, risk: rc.risk };
      const o = ood[name];
      if (o !== undefined) oodOut[name] = oodMetrics(u, o);
    }
    const comparison = test.msp === undefined ? null : mspComparison(test, error01);
    progress('metrics', 1, 1);
    let errors = 0;
    let brierSum = 0;
    for (let i = 0; i < nTest; i++) {
      errors += error01[i] as number;
      brierSum += brier[i] as number;
    }
    // The out-of-distribution rule on held-out data, and the shifted sets, through the worker's path.
    const shiftCtx = { snap, probe, dim, efSearch: input.efSearch, numLabels, labelNames: input.labelNames, flagging: input.flagging ?? DEFAULT_FLAGGING, test: first.test, testLabels: input.testLabels, ood: first.ood, signal, progress };
    const oodRule = oodRuleSummary(shiftCtx);
    const shifts = input.shifts === undefined ? undefined : evaluateShifts(shiftCtx, input.shifts);
    const result: EvaluationResult = {
      setup: input.setup,
      ood_rule_in_distribution_rate: oodRule.in_distribution.rule,
      ood_rule: oodRule,
      ...(shifts === undefined ? {} : { shifts }),
      target: downstream === undefined ? 'probe' : 'predictions',
      target_source: downstream === undefined ? 'the softmax-regression probe on the reference embeddings' : downstream.source,
      downstream_accuracy: 1 - errors / nTest,
      n_ref: nRef,
      n_test: nTest,
      n_ood: nOod,
      encoders: input.encoders.map((e) => e.name),
      k: snap.stats.k,
      wide_k: WIDE_K,
      probe_accuracy: downstream === undefined ? 1 - errors / nTest : probeAccuracy,
      probe_train_accuracy: probeTrainAccuracy,
      test_error_rate: errors / nTest,
      mean_brier: brierSum / nTest,
      oracle_aurc: oracleAurc(error01),
      hnsw_recall_at_100: recall,
      l2_norm_of: raw === undefined ? 'the L2-normalised output (norm 1: degenerate)' : `${raw.tensor} (the model output before L2 normalisation)`,
      gmm: { components: gmm.components, iterations: gmm.trace.length, converged: gmm.converged, seconds: gmmSeconds },
      calibration: snap.combination === undefined || testN.predictedAccuracy.some((v) => Number.isNaN(v)) ? null : calibrationMetrics(testN.predictedAccuracy, error01),
      combination:
        snap.combination === undefined
          ? { fitted: false, reason: combinationNotes.join('; ') || 'not fitted' }
          : { fitted: true, features: snap.combination.features, weights: snap.combination.weights, ...snap.combination.fit, ...(combinationNotes.length === 0 ? {} : { notes: combinationNotes }) },
      scores,
      ood: oodOut,
      model_combination: fittedWithModel === null ? { fitted: false } : { fitted: true, features: fittedWithModel.features, weights: fittedWithModel.weights, ...fittedWithModel.fit },
      msp_comparison: comparison,
      delta_vs_msp: comparison?.pairs.qualm_with_model === undefined ? null : { auroc: comparison.pairs.qualm_with_model.auroc.delta, ci95: comparison.pairs.qualm_with_model.auroc.ci95 },
    };
    return { result, test, ood, error01, riskCurves };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The result with every number rounded to `digits` decimals (for the JSON line and the report). */
export function roundResult<T>(value: T, digits = 4): T {
  const f = 10 ** digits;
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * f) / f : v))) as T;
}
