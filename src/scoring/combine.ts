import type { Combination } from '../index/index.js';
import { COMBINATION_FEATURE_ORDER, FEATURE_SOURCES, type FeatureOrientation, type SignalFeatureName } from '../signals.js';
import { isModelFeature, modelFeatureOfSignals, MODEL_FEATURE_NAMES } from './model-signals.js';
import type { Signals } from './signals.js';

/**
 * The fitted combination: a logistic regression of the downstream model's 0/1 error on the
 * signals, and an isotonic map from its output to a predicted accuracy. Fitted at build time
 * (eval/combination-fit.ts) on a held-out labelled split of the references; applied here, by
 * every worker, from the numbers stored in the bundle.
 */

const ORIENT: Readonly<Record<FeatureOrientation, (v: number) => number>> = {
  as_is: (v) => v,
  complement: (v) => 1 - v,
  log: (v) => Math.log(v + 1e-6),
};

/** The name of a combination feature, as a bundle stores it. */
export type CombinationFeature = SignalFeatureName;

/**
 * Every feature a combination may use, each oriented as uncertainty (larger = more likely
 * wrong), by the name stored in the bundle, derived from the signal table (src/signals.ts). A
 * missing signal (no labels, no radii, no Gaussian) gives 1, the worst value; a fit only uses
 * the features its bundle has. In the fit's column order (COMBINATION_FEATURE_ORDER).
 */
export const COMBINATION_FEATURES: Readonly<Record<CombinationFeature, (s: Signals) => number>> = Object.fromEntries(
  COMBINATION_FEATURE_ORDER.map((name) => {
    const { key, orient } = FEATURE_SOURCES[name];
    const f = ORIENT[orient];
    return [name, (s: Signals) => {
      const v = s[key];
      return v === null ? 1 : f(v);
    }];
  }),
) as Record<CombinationFeature, (s: Signals) => number>;

export const COMBINATION_FEATURE_NAMES: CombinationFeature[] = [...COMBINATION_FEATURE_ORDER];

function isFeature(name: string): name is CombinationFeature {
  return Object.hasOwn(COMBINATION_FEATURES, name);
}

/** Throws unless every feature the combination names is one this qualm computes. */
export function checkCombination(c: Combination): void {
  const unknown = c.features.filter((f) => !isFeature(f));
  if (unknown.length > 0) throw new RangeError(`the combination uses features this qualm does not compute: ${unknown.join(', ')} (it computes ${COMBINATION_FEATURE_NAMES.join(', ')})`);
  const wm = c.with_model;
  const unknownWm = wm === undefined ? [] : wm.features.filter((f) => !isFeature(f) && !isModelFeature(f));
  if (unknownWm.length > 0) throw new RangeError(`the combination with the model's signals uses features this qualm does not compute: ${unknownWm.join(', ')} (it computes ${[...COMBINATION_FEATURE_NAMES, ...MODEL_FEATURE_NAMES].join(', ')})`);
}

/** The named features of one sample's signals, in the given order. */
export function featureVector(signals: Signals, names: readonly string[]): number[] {
  return names.map((name) => {
    if (isModelFeature(name)) return modelFeatureOfSignals(name, signals);
    if (!isFeature(name)) throw new RangeError(`unknown combination feature ${name}`);
    return COMBINATION_FEATURES[name](signals);
  });
}

export function sigmoid(t: number): number {
  return t >= 0 ? 1 / (1 + Math.exp(-t)) : Math.exp(t) / (1 + Math.exp(t));
}

type LogisticModel = Pick<Combination, 'features' | 'mean' | 'scale' | 'weights' | 'bias'>;

/** The logistic model's chance of an error for one feature vector (in the model's feature order). */
export function errorProbabilityOfFeatures(c: LogisticModel, x: readonly number[]): number {
  let t = c.bias;
  for (let f = 0; f < x.length; f++) t += (c.weights[f] as number) * (((x[f] as number) - (c.mean[f] as number)) / (c.scale[f] as number));
  return sigmoid(t);
}

/** The combination's estimate of the chance of an error, in (0, 1). */
export function combinedErrorProbability(c: LogisticModel, signals: Signals): number {
  return errorProbabilityOfFeatures(c, featureVector(signals, c.features));
}

export interface LogisticFit {
  readonly mean: number[];
  readonly scale: number[];
  readonly weights: number[];
  readonly bias: number;
  readonly iterations: number;
  readonly converged: boolean;
}

/** Solves A x = b for a small symmetric positive-definite A (Gaussian elimination, partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs((m[r] as number[])[col] as number) > Math.abs((m[pivot] as number[])[col] as number)) pivot = r;
    [m[col], m[pivot]] = [m[pivot] as number[], m[col] as number[]];
    const p = (m[col] as number[])[col] as number;
    if (Math.abs(p) < 1e-300) throw new RangeError('singular system');
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const row = m[r] as number[];
      const f = (row[col] as number) / p;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) row[c] = (row[c] as number) - f * ((m[col] as number[])[c] as number);
    }
  }
  return m.map((row, i) => (row[n] as number) / (row[i] as number));
}

/**
 * L2-penalised logistic regression of y ∈ {0, 1} on the rows of x (features standardised
 * first; the penalty `l2` applies to the weights, not the bias), by Newton's method. Returns
 * the standardisation and the weights on the standardised scale.
 */
export function fitLogistic(x: readonly (readonly number[])[], y: ArrayLike<number>, opts: { l2?: number; maxIterations?: number; tolerance?: number } = {}): LogisticFit {
  const n = x.length;
  if (n === 0 || y.length !== n) throw new RangeError('fitLogistic needs rows and one target per row');
  const f = (x[0] as readonly number[]).length;
  if (x.some((row) => row.length !== f)) throw new RangeError(`fitLogistic needs rows of one width (${f})`);
  const l2 = opts.l2 ?? 1e-2;
  const mean = new Array<number>(f).fill(0);
  const scale = new Array<number>(f).fill(0);
  for (const row of x) for (let j = 0; j < f; j++) mean[j] = (mean[j] as number) + (row[j] as number) / n;
  for (const row of x) for (let j = 0; j < f; j++) scale[j] = (scale[j] as number) + ((row[j] as number) - (mean[j] as number)) ** 2 / n;
  // A constant feature (its spread at round-off level) keeps scale 1, so it contributes nothing.
  for (let j = 0; j < f; j++) {
    const sd = Math.sqrt(scale[j] as number);
    scale[j] = sd > 1e-9 * Math.max(1, Math.abs(mean[j] as number)) ? sd : 1;
  }
  const z = x.map((row) => row.map((v, j) => (v - (mean[j] as number)) / (scale[j] as number)));
  // Parameters: [bias, w_1..w_f].
  let beta = new Array<number>(f + 1).fill(0);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += y[i] as number;
  const rate = Math.min(Math.max(positives / n, 1e-6), 1 - 1e-6);
  beta[0] = Math.log(rate / (1 - rate));
  const maxIterations = opts.maxIterations ?? 50;
  const tolerance = opts.tolerance ?? 1e-10;
  let converged = false;
  let it = 0;
  for (; it < maxIterations && !converged; it++) {
    const grad = new Array<number>(f + 1).fill(0);
    const hess = Array.from({ length: f + 1 }, () => new Array<number>(f + 1).fill(0));
    for (let i = 0; i < n; i++) {
      const zi = z[i] as number[];
      let t = beta[0] as number;
      for (let j = 0; j < f; j++) t += (beta[j + 1] as number) * (zi[j] as number);
      const p = sigmoid(t);
      const r = p - (y[i] as number);
      const w = Math.max(p * (1 - p), 1e-12);
      const xi = [1, ...zi];
      for (let a = 0; a <= f; a++) {
        grad[a] = (grad[a] as number) + r * (xi[a] as number);
        const ha = hess[a] as number[];
        for (let b = a; b <= f; b++) ha[b] = (ha[b] as number) + w * (xi[a] as number) * (xi[b] as number);
      }
    }
    // Mean over the rows plus the penalty; the lower triangle mirrors the upper one.
    for (let a = 0; a <= f; a++) {
      grad[a] = (grad[a] as number) / n + (a === 0 ? 0 : l2 * (beta[a] as number));
      const ha = hess[a] as number[];
      for (let b = a; b <= f; b++) {
        const v = (ha[b] as number) / n + (a === b && a > 0 ? l2 : 0);
        ha[b] = v;
        (hess[b] as number[])[a] = v;
      }
    }
    const step = solve(hess, grad);
    beta = beta.map((v, j) => v - (step[j] as number));
    converged = step.reduce((s, v) => s + v * v, 0) < tolerance;
  }
  return { mean, scale, weights: beta.slice(1), bias: beta[0] as number, iterations: it, converged };
}

export interface IsotonicMap {
  readonly x: number[];
  readonly y: number[];
}

/**
 * Isotonic (pool-adjacent-violators) fit of the accuracy `correct` ∈ [0, 1] as a
 * non-increasing function of the score: each pooled block becomes two knots (its smallest
 * and largest score) at the block's mean accuracy.
 */
export function fitIsotonicAccuracy(score: ArrayLike<number>, correct: ArrayLike<number>): IsotonicMap {
  const n = score.length;
  if (n === 0 || correct.length !== n) throw new RangeError('fitIsotonicAccuracy needs scores and one outcome per score');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (score[a] as number) - (score[b] as number));
  // Blocks over the sorted scores: equal scores always share a block.
  const blocks: { lo: number; hi: number; sum: number; count: number }[] = [];
  for (let i = 0; i < n; ) {
    const s = score[order[i] as number] as number;
    let sum = 0;
    let count = 0;
    while (i < n && score[order[i] as number] === s) {
      sum += correct[order[i] as number] as number;
      count++;
      i++;
    }
    blocks.push({ lo: s, hi: s, sum, count });
    // Pool while the accuracy increases with the score (it must not).
    while (blocks.length >= 2) {
      const b = blocks[blocks.length - 1] as (typeof blocks)[number];
      const a = blocks[blocks.length - 2] as (typeof blocks)[number];
      if (a.sum / a.count >= b.sum / b.count) break;
      blocks.splice(blocks.length - 2, 2, { lo: a.lo, hi: b.hi, sum: a.sum + b.sum, count: a.count + b.count });
    }
  }
  const x: number[] = [];
  const y: number[] = [];
  for (const b of blocks) {
    const v = b.sum / b.count;
    x.push(b.lo);
    y.push(v);
    if (b.hi > b.lo) {
      x.push(b.hi);
      y.push(v);
    }
  }
  return { x, y };
}

/** The isotonic map at `score`: linear between knots, flat beyond the ends. */
export function applyIsotonic(map: IsotonicMap, score: number): number {
  const { x, y } = map;
  const n = x.length;
  if (n === 0) throw new RangeError('empty isotonic map');
  if (score <= (x[0] as number)) return y[0] as number;
  if (score >= (x[n - 1] as number)) return y[n - 1] as number;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if ((x[mid] as number) <= score) lo = mid;
    else hi = mid;
  }
  const x0 = x[lo] as number;
  const x1 = x[hi] as number;
  const t = x1 > x0 ? (score - x0) / (x1 - x0) : 0;
  return (y[lo] as number) + t * ((y[hi] as number) - (y[lo] as number));
}
