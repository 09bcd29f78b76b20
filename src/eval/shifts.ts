import type { IndexSnapshot } from '../index/index.js';
import { FlagRules, ThresholdPolicy, bundleScoreOptions, oodPercentileOf, scoreNeighbors } from '../scoring/index.js';
import { mspUncertainty } from './baselines.js';
import type { LinearProbe } from './linear-probe.js';
import { auroc } from './rank-metrics.js';

/**
 * The out-of-distribution rule on held-out data, and `qualm evaluate --shifts`: the test set
 * under covariate shifts (eval/corruptions.ts), each scored through the worker's own path
 * (the bundle's k nearest references, scoreNeighbors, the worker's flagging rules) and
 * compared with the probe's own confidence (MSP).
 */

/** How the worker flags, as `evaluate` reproduces it: QUALM_FLAG_THRESHOLD, QUALM_OOD_RULE, QUALM_OOD_PERCENTILE, QUALM_SHIFT_WINDOW. */
export interface FlaggingSettings {
  readonly flagThreshold: number;
  readonly oodRule: boolean;
  readonly oodPercentile: number;
  readonly shiftWindow: number;
}

/** The largest fall of the flag rate from one severity to the next that still counts as not falling. */
export const MONOTONE_TOLERANCE = 0.005;

export const DEFAULT_FLAGGING: FlaggingSettings = { flagThreshold: 0.9, oodRule: true, oodPercentile: 0.99, shiftWindow: 200 };

/** One shifted copy of some test rows, already embedded by the evaluated encoder. */
export interface ShiftedSet {
  readonly family: string;
  /** 1 = mildest. */
  readonly severity: number;
  /** The corruption's parameter, for people. */
  readonly level: string;
  /** Row-major embeddings of the shifted rows, in the order of ShiftInput.rows. */
  readonly embeddings: Float32Array;
}

export interface ShiftInput {
  /** The test rows every shifted set is a copy of. */
  readonly rows: ArrayLike<number>;
  readonly sets: readonly ShiftedSet[];
  /** Where the corruptions come from (eval/corruptions.ts families), for the result. */
  readonly kind: 'image' | 'text';
  /** How the rows were picked, for people (e.g. "the first 2000 test rows"). */
  readonly pick?: string;
}

/** Per-point scores of one set, through the worker's path. */
interface SetPoints {
  readonly uncertainty: Float64Array;
  readonly predictedAccuracy: Float64Array;
  readonly oodPercentile: Float64Array;
  readonly density: Float64Array;
  /** NaN without the bundle's Gaussian. */
  readonly mahalanobis: Float64Array;
  /** By every rule, the stream-level shift window included (the set streamed alone, in order, the window starting empty). */
  readonly flagged: Uint8Array;
  /** By the per-sample rules only (threshold and out-of-distribution rule). */
  readonly sampleFlagged: Uint8Array;
}

function scorePoints(snap: IndexSnapshot, z: Float32Array, dim: number, efSearch: number, flagging: FlaggingSettings): SetPoints {
  const n = z.length / dim;
  const opts = bundleScoreOptions(snap);
  // The worker's rules with the threshold policy (a target rate's window would mix the sets).
  const base = { minPredictedAccuracy: null, oodRule: flagging.oodRule, oodPercentile: flagging.oodPercentile };
  const rules = new FlagRules({ ...base, uncertainty: new ThresholdPolicy(flagging.flagThreshold), shiftWindow: flagging.shiftWindow });
  const perSample = new FlagRules({ ...base, uncertainty: new ThresholdPolicy(flagging.flagThreshold) });
  const out: SetPoints = {
    uncertainty: new Float64Array(n),
    predictedAccuracy: new Float64Array(n),
    oodPercentile: new Float64Array(n),
    density: new Float64Array(n),
    mahalanobis: new Float64Array(n),
    flagged: new Uint8Array(n),
    sampleFlagged: new Uint8Array(n),
  };
  snap.setEfSearch(efSearch);
  for (let i = 0; i < n; i++) {
    const row = z.subarray(i * dim, (i + 1) * dim);
    const s = scoreNeighbors(snap.search(row), snap.stats, opts, row);
    out.uncertainty[i] = s.uncertainty;
    out.predictedAccuracy[i] = s.predictedAccuracy ?? NaN;
    out.oodPercentile[i] = oodPercentileOf(s.signals);
    out.density[i] = s.signals.densityPercentile;
    out.mahalanobis[i] = s.signals.mahalanobisPercentile ?? NaN;
    out.flagged[i] = rules.decide(s) === null ? 0 : 1;
    out.sampleFlagged[i] = perSample.decide(s) === null ? 0 : 1;
  }
  return out;
}

const share = (x: ArrayLike<number>, pred: (v: number) => boolean): number => {
  let k = 0;
  for (let i = 0; i < x.length; i++) if (pred(x[i] as number)) k++;
  return x.length === 0 ? NaN : k / x.length;
};

const mean = (x: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] as number;
  return x.length === 0 ? NaN : s / x.length;
};

/** The out-of-distribution rule's reach on one set: combined, and each measure at its split level √P. */
export interface OodRuleRates {
  /** Share at or beyond QUALM_OOD_PERCENTILE by the combined percentile (what the worker flags). */
  readonly rule: number;
  /** Share whose kNN density percentile alone is at or beyond √P. */
  readonly density: number;
  /** Share whose Mahalanobis percentile alone is at or beyond √P (null without the Gaussian). */
  readonly mahalanobis: number | null;
  /** The old rule, the Mahalanobis percentile alone at P (null without the Gaussian). */
  readonly mahalanobis_only_at_p: number | null;
  /** Mean combined out-of-distribution percentile (at most about 1/2 in distribution; what the shift window tests). */
  readonly mean_percentile: number;
}

function ruleRates(p: SetPoints, percentile: number): OodRuleRates {
  const split = Math.sqrt(percentile);
  const hasGaussian = p.mahalanobis.length > 0 && !Number.isNaN(p.mahalanobis[0]);
  return {
    rule: share(p.oodPercentile, (v) => v >= percentile),
    density: share(p.density, (v) => v >= split),
    mahalanobis: hasGaussian ? share(p.mahalanobis, (v) => v >= split) : null,
    mahalanobis_only_at_p: hasGaussian ? share(p.mahalanobis, (v) => v >= percentile) : null,
    mean_percentile: mean(p.oodPercentile),
  };
}

/** The OOD rule on the held-out in-distribution test set (its false-positive rate) and on the OOD set. */
export interface OodRuleSummary {
  readonly percentile: number;
  readonly nominal_in_distribution_rate: number;
  readonly combination: string;
  /** Folds of the Gaussian's cross-fitted quantiles; null: in-sample (an old bundle) or no Gaussian. */
  readonly gaussian_cross_fit_folds: number | null;
  readonly in_distribution: OodRuleRates;
  readonly ood_set: OodRuleRates | null;
  /** Share of the in-distribution test set (streamed in its order) the worker's rules flag: threshold policy, OOD rule, shift window. */
  readonly in_distribution_flag_rate: number;
  /** The same by the per-sample rules only. */
  readonly in_distribution_sample_flag_rate: number;
  readonly shift_window: number;
}

export interface ShiftRow {
  readonly family: string;
  readonly severity: number;
  readonly level: string;
  readonly n: number;
  readonly probe_accuracy: number;
  /** Mean of qualm's predicted_accuracy. */
  readonly mean_predicted_accuracy: number;
  /** mean_predicted_accuracy − probe_accuracy (positive: over-confident). */
  readonly calibration_gap: number;
  /** Share the worker's rules flag (QUALM_FLAG_THRESHOLD, the OOD rule and the shift window, the set streamed alone). */
  readonly flag_rate: number;
  /** Share the per-sample rules flag (without the shift window). */
  readonly sample_flag_rate: number;
  readonly ood_rule: OodRuleRates;
  /** AUROC of telling the shifted rows (positive) from the same rows clean, per score. */
  readonly detection_auroc: { readonly qualm_ood: number; readonly qualm: number; readonly msp: number };
  /** AUROC of the probe's errors on the shifted rows (null when it is all right or all wrong). */
  readonly error_auroc: { readonly qualm: number | null; readonly msp: number | null };
  /** Share of the rows the probe assigns to each label (index = label): a set pushed towards one class shows here. */
  readonly predicted_label_share: readonly number[];
}

export interface ShiftReport {
  readonly kind: 'image' | 'text';
  readonly n_rows: number;
  /** How the rows were picked (ShiftInput.pick). */
  readonly rows_pick: string;
  /** The labels the shares below are indexed by. */
  readonly label_names: readonly string[];
  /** Share of the rows with each true label (index = label); every set is a copy of the same rows. */
  readonly label_share: readonly number[];
  readonly clean: Omit<ShiftRow, 'family' | 'severity' | 'level' | 'detection_auroc'>;
  readonly sets: readonly ShiftRow[];
  /**
   * Families whose flag rate falls by more than MONOTONE_TOLERANCE anywhere from clean over the
   * severities (a drop within it, at a saturated rate, is one sample in a few hundred), or
   * whose strongest severity is not above clean.
   */
  readonly non_monotone_families: readonly string[];
  /** Sets the probe gets under 20% right, and whether each is flagged at 80% or more. */
  readonly collapsed: readonly { readonly family: string; readonly severity: number; readonly probe_accuracy: number; readonly flag_rate: number; readonly flagged_80: boolean }[];
}

export interface ShiftContext {
  readonly snap: IndexSnapshot;
  readonly probe: LinearProbe;
  readonly dim: number;
  readonly efSearch: number;
  readonly numLabels: number;
  /** For the report (label_names); indices when absent. */
  readonly labelNames?: readonly string[] | undefined;
  readonly flagging: FlaggingSettings;
  readonly test: Float32Array;
  readonly testLabels: ArrayLike<number>;
  readonly ood: Float32Array | null;
  readonly signal?: AbortSignal | undefined;
  readonly progress?: (phase: string, done: number, total: number) => void;
}

/** The rule's in-distribution false-positive rate on the test set, and its reach on the OOD set. */
export function oodRuleSummary(ctx: ShiftContext): OodRuleSummary {
  const p = ctx.flagging.oodPercentile;
  const test = scorePoints(ctx.snap, ctx.test, ctx.dim, ctx.efSearch, ctx.flagging);
  const ood = ctx.ood === null || ctx.ood.length === 0 ? null : scorePoints(ctx.snap, ctx.ood, ctx.dim, ctx.efSearch, ctx.flagging);
  const g = ctx.snap.gaussian;
  return {
    percentile: p,
    nominal_in_distribution_rate: 1 - p,
    combination:
      g === undefined
        ? 'kNN density percentile alone (no Gaussian in the bundle)'
        : 'max(kNN density percentile, Mahalanobis percentile)^2 (Sidak): each measure flags at sqrt(P)',
    gaussian_cross_fit_folds: g?.crossFitFolds ?? null,
    in_distribution: ruleRates(test, p),
    ood_set: ood === null ? null : ruleRates(ood, p),
    in_distribution_flag_rate: mean(test.flagged),
    in_distribution_sample_flag_rate: mean(test.sampleFlagged),
    shift_window: ctx.flagging.shiftWindow,
  };
}

interface SetErrors {
  readonly error: Uint8Array;
  readonly msp: Float64Array;
  readonly predicted: ArrayLike<number>;
}

function errorsOf(probe: LinearProbe, z: Float32Array, n: number, labels: ArrayLike<number>): SetErrors {
  const probs = probe.predictProba(z, n);
  const pred = probe.predict(z, n);
  const error = Uint8Array.from({ length: n }, (_, i) => (pred[i] === labels[i] ? 0 : 1));
  return { error, msp: mspUncertainty(probs, n, probe.numClasses), predicted: pred };
}

/** Share of `values` equal to each of 0 … numLabels − 1. */
export function labelShares(values: ArrayLike<number>, numLabels: number): number[] {
  const counts = new Array<number>(numLabels).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v >= 0 && v < numLabels) counts[v] = (counts[v] as number) + 1;
  }
  return counts.map((c) => (values.length === 0 ? NaN : c / values.length));
}

const errorAuroc = (score: Float64Array, error: Uint8Array): number | null => {
  const e = mean(error);
  return e === 0 || e === 1 || Number.isNaN(e) ? null : auroc(score, error);
};

/** Every shifted set against the clean rows it was made from. */
export function evaluateShifts(ctx: ShiftContext, input: ShiftInput): ShiftReport {
  const { dim } = ctx;
  const rows = Array.from(input.rows);
  const n = rows.length;
  const labels = Int32Array.from(rows, (r) => ctx.testLabels[r] as number);
  const cleanZ = new Float32Array(n * dim);
  rows.forEach((r, j) => cleanZ.set(ctx.test.subarray(r * dim, (r + 1) * dim), j * dim));
  const clean = scorePoints(ctx.snap, cleanZ, dim, ctx.efSearch, ctx.flagging);
  const cleanErr = errorsOf(ctx.probe, cleanZ, n, labels);
  const summary = (p: SetPoints, e: SetErrors): Omit<ShiftRow, 'family' | 'severity' | 'level' | 'detection_auroc'> => {
    const acc = 1 - mean(e.error);
    const predicted = mean(p.predictedAccuracy);
    return {
      n,
      probe_accuracy: acc,
      mean_predicted_accuracy: predicted,
      calibration_gap: predicted - acc,
      flag_rate: mean(p.flagged),
      sample_flag_rate: mean(p.sampleFlagged),
      ood_rule: ruleRates(p, ctx.flagging.oodPercentile),
      error_auroc: { qualm: errorAuroc(p.uncertainty, e.error), msp: errorAuroc(e.msp, e.error) },
      predicted_label_share: labelShares(e.predicted, ctx.numLabels),
    };
  };
  const detect = (cleanScore: Float64Array, shifted: Float64Array): number => {
    const score = new Float64Array(2 * n);
    score.set(cleanScore, 0);
    score.set(shifted, n);
    const positive = new Uint8Array(2 * n).fill(1, n);
    return auroc(score, positive);
  };
  const out: ShiftRow[] = [];
  for (const [i, set] of input.sets.entries()) {
    if (ctx.signal?.aborted === true) throw new Error('evaluation cancelled');
    ctx.progress?.('shifts', i, input.sets.length);
    if (set.embeddings.length !== n * dim) throw new RangeError(`shift ${set.family} ${set.severity}: ${set.embeddings.length} values are not ${n} rows of ${dim}`);
    const p = scorePoints(ctx.snap, set.embeddings, dim, ctx.efSearch, ctx.flagging);
    const e = errorsOf(ctx.probe, set.embeddings, n, labels);
    out.push({
      family: set.family,
      severity: set.severity,
      level: set.level,
      ...summary(p, e),
      detection_auroc: { qualm_ood: detect(clean.oodPercentile, p.oodPercentile), qualm: detect(clean.uncertainty, p.uncertainty), msp: detect(cleanErr.msp, e.msp) },
    });
  }
  ctx.progress?.('shifts', input.sets.length, input.sets.length);
  const cleanRow = summary(clean, cleanErr);
  const families = [...new Set(out.map((r) => r.family))];
  const nonMonotone = families.filter((f) => {
    const rates = [cleanRow.flag_rate, ...out.filter((r) => r.family === f).sort((a, b) => a.severity - b.severity).map((r) => r.flag_rate)];
    return rates.some((v, i) => i > 0 && v < (rates[i - 1] as number) - MONOTONE_TOLERANCE) || !((rates[rates.length - 1] as number) > cleanRow.flag_rate);
  });
  return {
    kind: input.kind,
    n_rows: n,
    rows_pick: input.pick ?? `${n} test rows`,
    label_names: Array.from({ length: ctx.numLabels }, (_, c) => ctx.labelNames?.[c] ?? String(c)),
    label_share: labelShares(labels, ctx.numLabels),
    clean: cleanRow,
    sets: out,
    non_monotone_families: nonMonotone,
    collapsed: out.filter((r) => r.probe_accuracy < 0.2).map((r) => ({ family: r.family, severity: r.severity, probe_accuracy: r.probe_accuracy, flag_rate: r.flag_rate, flagged_80: r.flag_rate >= 0.8 })),
  };
}
