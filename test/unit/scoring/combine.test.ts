import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Combination } from '../../../src/index/index.js';
import {
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
  type Signals,
} from '../../../src/scoring/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

// ---------------------------------------------------------------------------------------------
// Independent references
// ---------------------------------------------------------------------------------------------

const logistic = (t: number): number => 1 / (1 + Math.exp(-t));

/** Population mean and standard deviation per column (a constant column keeps scale 1). */
function standardise(x: readonly (readonly number[])[]): { mean: number[]; scale: number[]; z: number[][] } {
  const n = x.length;
  const f = (x[0] as readonly number[]).length;
  const mean = Array.from({ length: f }, (_, j) => x.reduce((s, row) => s + (row[j] as number), 0) / n);
  const scale = mean.map((m, j) => Math.sqrt(x.reduce((s, row) => s + ((row[j] as number) - m) ** 2, 0) / n) || 1);
  return { mean, scale, z: x.map((row) => row.map((v, j) => (v - (mean[j] as number)) / (scale[j] as number))) };
}

/** Mean log-loss of the standardised design plus (l2 / 2) * |w|², and its gradient in [bias, w...]. */
function penalisedLoss(z: readonly number[][], y: readonly number[], beta: readonly number[], l2: number): { loss: number; grad: number[] } {
  const n = z.length;
  const grad = new Array<number>(beta.length).fill(0);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const zi = z[i] as number[];
    const t = zi.reduce((s, v, j) => s + v * (beta[j + 1] as number), beta[0] as number);
    const yi = y[i] as number;
    // log(1 + e^t) - y t, computed stably.
    loss += (t > 0 ? t + Math.log1p(Math.exp(-t)) : Math.log1p(Math.exp(t))) - yi * t;
    const r = logistic(t) - yi;
    grad[0] = (grad[0] as number) + r / n;
    for (let j = 0; j < zi.length; j++) grad[j + 1] = (grad[j + 1] as number) + (r * (zi[j] as number)) / n;
  }
  loss /= n;
  for (let j = 1; j < beta.length; j++) {
    loss += (l2 / 2) * (beta[j] as number) ** 2;
    grad[j] = (grad[j] as number) + l2 * (beta[j] as number);
  }
  return { loss, grad };
}

/**
 * Plain fixed-step gradient descent from zero. Standardised columns have mean square 1, so
 * the Hessian's largest eigenvalue is at most 0.25 * (1 + f) + l2 (its trace bound): the step
 * 1 / that never overshoots.
 */
function gradientDescent(z: readonly number[][], y: readonly number[], l2: number): { beta: number[]; loss: number } {
  const f = (z[0] as number[]).length;
  const step = 1 / (0.25 * (1 + f) + l2);
  let beta = new Array<number>(f + 1).fill(0);
  for (let it = 0; it < 200_000; it++) {
    const { grad } = penalisedLoss(z, y, beta, l2);
    if (Math.max(...grad.map(Math.abs)) < 1e-11) break;
    beta = beta.map((b, j) => b - step * (grad[j] as number));
  }
  return { beta, loss: penalisedLoss(z, y, beta, l2).loss };
}

/** Inverse of a small symmetric positive-definite matrix (Gauss-Jordan). */
function invert(a: readonly number[][]): number[][] {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    const pivot = (m[c] as number[])[c] as number;
    m[c] = (m[c] as number[]).map((v) => v / pivot);
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const factor = (m[r] as number[])[c] as number;
      m[r] = (m[r] as number[]).map((v, j) => v - factor * ((m[c] as number[])[j] as number));
    }
  }
  return m.map((row) => row.slice(n));
}

/** Rows of independent Gaussian features (given means and sds) and Bernoulli outcomes of the logistic model. */
function logisticData(n: number, seed: number, means: readonly number[], sds: readonly number[], bias: number, weights: readonly number[]) {
  const rnd = seededRandom(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = means.map((m, j) => m + (sds[j] as number) * gaussian(rnd));
    x.push(row);
    y.push(rnd() < logistic(row.reduce((s, v, j) => s + v * (weights[j] as number), bias)) ? 1 : 0);
  }
  return { x, y };
}

const norm = (v: readonly number[]): number => Math.hypot(...v);

/**
 * The best non-increasing fit by exhaustion: the outcomes are grouped by distinct score (ties
 * share a value), every partition of the groups into contiguous blocks is tried, and among
 * those whose block means do not increase the one with the least squared error wins (the
 * isotonic solution is constant on contiguous blocks at the block means). Value per score.
 */
function bruteIsotonic(score: readonly number[], correct: readonly number[]): Map<number, number> {
  const distinct = [...new Set(score)].sort((a, b) => a - b);
  const groups = distinct.map((s) => correct.filter((_, i) => score[i] === s));
  const m = groups.length;
  let best: { sse: number; values: number[] } | null = null;
  for (let mask = 0; mask < 1 << (m - 1); mask++) {
    // Bit g set: a block ends after group g.
    const values: number[] = [];
    let sse = 0;
    let feasible = true;
    let start = 0;
    let previous = Infinity;
    for (let g = 0; g < m; g++) {
      if (g < m - 1 && (mask & (1 << g)) === 0) continue;
      const members = groups.slice(start, g + 1).flat();
      const mean = members.reduce((s, v) => s + v, 0) / members.length;
      if (mean > previous + 1e-12) feasible = false;
      previous = mean;
      sse += members.reduce((s, v) => s + (v - mean) ** 2, 0);
      for (let h = start; h <= g; h++) values.push(mean);
      start = g + 1;
    }
    if (feasible && (best === null || sse < best.sse - 1e-12)) best = { sse, values };
  }
  assert.ok(best !== null);
  return new Map(distinct.map((s, g) => [s, (best as { values: number[] }).values[g] as number]));
}

// ---------------------------------------------------------------------------------------------
// fitLogistic
// ---------------------------------------------------------------------------------------------

test('fitLogistic recovers known coefficients within four asymptotic standard errors', () => {
  // On the standardised scale about bias 0, weights (0.75, -2, 0.5): outcomes of both kinds throughout.
  const trueBias = -4;
  const trueWeights = [1.5, -1, 0.5];
  const { x, y } = logisticData(20_000, 7, [2, -1, 0], [0.5, 2, 1], trueBias, trueWeights);
  const fit = fitLogistic(x, y, { l2: 0 });
  assert.ok(fit.converged);
  // The truth on the fit's standardised scale: w_j * scale_j, and the bias at the means.
  const wantW = trueWeights.map((w, j) => w * (fit.scale[j] as number));
  const wantBias = trueBias + trueWeights.reduce((s, w, j) => s + w * (fit.mean[j] as number), 0);
  // Standard errors from the inverse observed Fisher information at the fit: the MLE is
  // asymptotically normal with that covariance, so a correct fit lands within 4 SE of the
  // truth per coordinate except with probability ~6e-5 (and the seed is fixed).
  const { z } = standardise(x);
  const info = Array.from({ length: 4 }, () => new Array<number>(4).fill(0));
  for (const zi of z) {
    const p = logistic(zi.reduce((s, v, j) => s + v * (fit.weights[j] as number), fit.bias));
    const xi = [1, ...zi];
    for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) (info[a] as number[])[b] = ((info[a] as number[])[b] as number) + p * (1 - p) * (xi[a] as number) * (xi[b] as number);
  }
  const cov = invert(info);
  const se = cov.map((row, i) => Math.sqrt(row[i] as number));
  const got = [fit.bias, ...fit.weights];
  const want = [wantBias, ...wantW];
  for (let j = 0; j < 4; j++) {
    assert.ok((se[j] as number) < 0.05, `the test has teeth: SE ${se[j]} is small`);
    assert.ok(Math.abs((got[j] as number) - (want[j] as number)) < 4 * (se[j] as number), `parameter ${j}: got ${got[j]}, want ${want[j]} ± ${4 * (se[j] as number)}`);
  }
});

test('fitLogistic converges in a few Newton steps', () => {
  for (const seed of [1, 2, 3]) {
    const { x, y } = logisticData(2_000, seed, [0, 5, -3], [1, 0.1, 10], 25.3, [2, -5, 0.1]);
    for (const l2 of [0, 1e-2, 1]) {
      const fit = fitLogistic(x, y, { l2 });
      assert.ok(fit.converged, `seed ${seed} l2 ${l2}`);
      assert.ok(fit.iterations >= 1 && fit.iterations <= 10, `seed ${seed} l2 ${l2}: ${fit.iterations} iterations`);
    }
  }
  // With maxIterations 1 it stops after one step, not converged.
  const { x, y } = logisticData(500, 4, [0], [1], 0, [3]);
  const one = fitLogistic(x, y, { maxIterations: 1 });
  assert.equal(one.iterations, 1);
  assert.equal(one.converged, false);
});

test('fitLogistic equals plain gradient descent on the same penalised mean log-loss', () => {
  for (const [seed, l2] of [
    [11, 0.05],
    [12, 1e-2],
    [13, 0.5],
  ] as const) {
    const { x, y } = logisticData(300, seed, [1, -2, 0.5], [2, 0.3, 1], -0.2, [0.8, 3, -1.2]);
    const fit = fitLogistic(x, y, { l2 });
    const ref = standardise(x);
    for (let j = 0; j < 3; j++) {
      assert.ok(Math.abs((fit.mean[j] as number) - (ref.mean[j] as number)) < 1e-12);
      assert.ok(Math.abs((fit.scale[j] as number) - (ref.scale[j] as number)) < 1e-12);
    }
    const gd = gradientDescent(ref.z, y, l2);
    const got = [fit.bias, ...fit.weights];
    got.forEach((v, j) => assert.ok(Math.abs(v - (gd.beta[j] as number)) < 1e-4, `seed ${seed} parameter ${j}: newton ${v}, descent ${gd.beta[j]}`));
    // Newton's point is the minimiser: no lower loss than descent's, and a zero gradient.
    const atFit = penalisedLoss(ref.z, y, got, l2);
    assert.ok(atFit.loss <= gd.loss + 1e-12);
    assert.ok(Math.max(...atFit.grad.map(Math.abs)) < 1e-9);
  }
});

test('fitLogistic gives an exactly constant feature weight 0 and scale 1, leaving the rest as without it', () => {
  // 512 rows: c / 512 is exact, so the constant's mean is exactly c and its variance exactly 0.
  const { x, y } = logisticData(512, 21, [0, 1], [1, 2], 0.1, [1, -0.5]);
  for (const c of [0, 2, -4, 0.75]) {
    const withConstant = fitLogistic(
      x.map((row) => [row[0] as number, c, row[1] as number]),
      y,
    );
    const without = fitLogistic(x, y);
    assert.equal(withConstant.scale[1], 1);
    assert.equal(withConstant.mean[1], c);
    assert.ok(Math.abs(withConstant.weights[1] as number) < 1e-12);
    assert.ok(Math.abs(withConstant.bias - without.bias) < 1e-9);
    assert.ok(Math.abs((withConstant.weights[0] as number) - (without.weights[0] as number)) < 1e-9);
    assert.ok(Math.abs((withConstant.weights[2] as number) - (without.weights[1] as number)) < 1e-9);
  }
});

test(
  'fitLogistic: a constant feature whose mean rounds (0.1 over 150 rows) still gets scale 1 and no influence',
  () => {
    const { x, y } = logisticData(150, 150, [0], [1], 0, [2]);
    const fit = fitLogistic(
      x.map((row) => [row[0] as number, 0.1]),
      y,
    );
    const model = { features: ['a', 'b'], ...fit };
    // Moving a feature that never varied in the fit must not move the probability.
    const p = errorProbabilityOfFeatures(model, [0, 0.1]);
    const moved = errorProbabilityOfFeatures(model, [0, 0.6]);
    assert.ok(Math.abs(p - moved) < 1e-9, `p(x=0.1) = ${p}, p(x=0.6) = ${moved} (scale ${fit.scale[1]}, weight ${fit.weights[1]})`);
    assert.equal(fit.scale[1], 1);
  },
);

test('fitLogistic: the L2 penalty shrinks the weights as it grows, towards the base-rate bias', () => {
  const { x, y } = logisticData(1_000, 31, [0, 0, 0], [1, 1, 1], 0.4, [1.2, -0.7, 0.3]);
  const norms = [0, 1e-3, 1e-2, 0.1, 1, 10, 100].map((l2) => norm(fitLogistic(x, y, { l2 }).weights));
  for (let i = 1; i < norms.length; i++) assert.ok((norms[i] as number) < (norms[i - 1] as number), `|w| ${norms.join(', ')}`);
  const huge = fitLogistic(x, y, { l2: 1e6 });
  assert.ok(norm(huge.weights) < 1e-5 * (norms[0] as number));
  const rate = y.reduce((s, v) => s + v, 0) / y.length;
  assert.ok(Math.abs(huge.bias - Math.log(rate / (1 - rate))) < 1e-5);
});

test('fitLogistic throws on empty input and on targets that do not match the rows', () => {
  assert.throws(() => fitLogistic([], []), RangeError);
  assert.throws(() => fitLogistic([[1], [2]], [0]), RangeError);
  assert.throws(() => fitLogistic([[1]], [0, 1]), RangeError);
  assert.throws(() => fitLogistic([[1]], new Float64Array(0)), RangeError);
});

test('fitLogistic throws on rows of different widths', () => {
  assert.throws(() => fitLogistic([[1, 2], [3], [4, 5]], [0, 1, 0]), RangeError);
});

// ---------------------------------------------------------------------------------------------
// fitIsotonicAccuracy and applyIsotonic
// ---------------------------------------------------------------------------------------------

test('fitIsotonicAccuracy is non-increasing in the score, with ascending knots', () => {
  const rnd = seededRandom(41);
  const score = Array.from({ length: 600 }, () => Math.round(rnd() * 200) / 200); // with ties
  const correct = score.map((s) => (rnd() < 0.9 - 0.6 * s ? 1 : 0));
  const map = fitIsotonicAccuracy(score, correct);
  assert.equal(map.x.length, map.y.length);
  for (let i = 1; i < map.x.length; i++) {
    assert.ok((map.x[i] as number) > (map.x[i - 1] as number), 'knots strictly ascending');
    assert.ok((map.y[i] as number) <= (map.y[i - 1] as number), 'accuracy non-increasing');
  }
  let previous = Infinity;
  for (let s = -0.1; s <= 1.1; s += 0.001) {
    const v = applyIsotonic(map, s);
    assert.ok(v <= previous && v >= 0 && v <= 1);
    previous = v;
  }
});

test('fitIsotonicAccuracy is the identity (per distinct score) on already non-increasing data', () => {
  const rnd = seededRandom(42);
  for (let t = 0; t < 50; t++) {
    const m = 1 + Math.floor(rnd() * 20);
    const levels = Array.from({ length: m }, () => rnd()).sort((a, b) => b - a); // non-increasing per score
    const score: number[] = [];
    const correct: number[] = [];
    levels.forEach((v, g) => {
      // One outcome v, or pairs v ± spread (mean v) at score g.
      const pairs = Math.floor(rnd() * 3);
      const spread = Math.min(v, 1 - v) * rnd();
      if (pairs === 0) {
        score.push(g);
        correct.push(v);
      }
      for (let r = 0; r < pairs; r++) {
        score.push(g, g);
        correct.push(v - spread, v + spread);
      }
    });
    // Shuffle the input order: the fit must sort.
    const order = score.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const map = fitIsotonicAccuracy(
      order.map((i) => score[i] as number),
      order.map((i) => correct[i] as number),
    );
    levels.forEach((v, g) => {
      const outcomes = correct.filter((_, i) => score[i] === g);
      const mean = outcomes.reduce((s, x) => s + x, 0) / outcomes.length;
      assert.ok(Math.abs(mean - v) < 1e-12);
      assert.ok(Math.abs(applyIsotonic(map, g) - mean) < 1e-12, `trial ${t} score ${g}`);
    });
  }
});

test('fitIsotonicAccuracy equals the exhaustive best non-increasing block fit on small random inputs', () => {
  const rnd = seededRandom(43);
  for (let t = 0; t < 400; t++) {
    const n = 1 + Math.floor(rnd() * 14);
    const distinctScores = 1 + Math.floor(rnd() * 10);
    const score = Array.from({ length: n }, () => Math.floor(rnd() * distinctScores) / 4 - 1);
    const binary = rnd() < 0.5;
    const correct = score.map(() => (binary ? (rnd() < 0.5 ? 1 : 0) : rnd()));
    const map = fitIsotonicAccuracy(score, correct);
    const want = bruteIsotonic(score, correct);
    for (const [s, v] of want) assert.ok(Math.abs(applyIsotonic(map, s) - v) < 1e-12, `trial ${t} score ${s}: ${applyIsotonic(map, s)} vs ${v}`);
    // The knots sit at observed scores only.
    for (const k of map.x) assert.ok(want.has(k));
  }
});

test('fitIsotonicAccuracy: tied scores share one value and one knot', () => {
  // Sorted with the tie broken as (1, 0) the tie is already "decreasing"; grouping by score
  // is what makes score 1 one block at mean 0.5.
  const map = fitIsotonicAccuracy([1, 0, 2, 1], [1, 1, 0, 0]);
  assert.deepEqual(map, { x: [0, 1, 2], y: [1, 0.5, 0] });
  // A tie pooled with its neighbour: (1 at score 0), (0, 1, 1 at score 1): 2/3 < 1, no pool.
  assert.deepEqual(fitIsotonicAccuracy([0, 1, 1, 1], [1, 0, 1, 1]), { x: [0, 1], y: [1, 2 / 3] });
  // And when the tie's mean exceeds the lower score's, all pool: one block of two knots.
  const pooled = fitIsotonicAccuracy([0, 1, 1], [0, 1, 1]);
  assert.deepEqual(pooled, { x: [0, 1], y: [2 / 3, 2 / 3] });
});

test('applyIsotonic: flat beyond the ends, exact at knots, linear between knots', () => {
  const map = { x: [0, 1, 1.5, 3], y: [0.9, 0.5, 0.5, 0.1] };
  assert.equal(applyIsotonic(map, -1e9), 0.9);
  assert.equal(applyIsotonic(map, -0.001), 0.9);
  assert.equal(applyIsotonic(map, 3.001), 0.1);
  assert.equal(applyIsotonic(map, Infinity), 0.1);
  map.x.forEach((k, i) => assert.equal(applyIsotonic(map, k), map.y[i]));
  const rnd = seededRandom(44);
  for (let t = 0; t < 1000; t++) {
    const s = rnd() * 3;
    const i = s < 1 ? 0 : s < 1.5 ? 1 : 2;
    const x0 = map.x[i] as number;
    const x1 = map.x[i + 1] as number;
    const y0 = map.y[i] as number;
    const y1 = map.y[i + 1] as number;
    assert.ok(Math.abs(applyIsotonic(map, s) - (y0 + ((s - x0) / (x1 - x0)) * (y1 - y0))) < 1e-12);
  }
  assert.equal(applyIsotonic({ x: [2], y: [0.7] }, -5), 0.7);
  assert.equal(applyIsotonic({ x: [2], y: [0.7] }, 2), 0.7);
  assert.equal(applyIsotonic({ x: [2], y: [0.7] }, 9), 0.7);
  assert.throws(() => applyIsotonic({ x: [], y: [] }, 0), RangeError);
});

test('a fitted block spanning several scores is flat between its two knots', () => {
  // Scores 1 and 2 pool (0 then 1 must not increase): one block with knots at 1 and 2.
  const map = fitIsotonicAccuracy([0, 1, 2, 3], [1, 0, 1, 0]);
  assert.deepEqual(map, { x: [0, 1, 2, 3], y: [1, 0.5, 0.5, 0] });
  assert.equal(applyIsotonic(map, 1.37), 0.5);
  assert.equal(applyIsotonic(map, 0.5), 0.75);
});

test('fitIsotonicAccuracy throws on empty input and on mismatched lengths', () => {
  assert.throws(() => fitIsotonicAccuracy([], []), RangeError);
  assert.throws(() => fitIsotonicAccuracy([1, 2], [1]), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Features and the combined probability
// ---------------------------------------------------------------------------------------------

/** A confident sample's signals: dense, inside its cluster, unanimous neighbours. */
const confident: Signals = {
  meanKnnDistance: 0.1,
  kthKnnDistance: 0.15,
  densityPercentile: 0.2,
  kthKnnPercentile: 0.25,
  relativeDensity: 0.9,
  relativeDensityPercentile: 0.3,
  labelAgreement: 0.9,
  labelEntropy: 0.2,
  labelMargin: 0.8,
  reverseNeighborConsistency: 0.9,
  mahalanobisPercentile: 0.3,
  relativeMahalanobisPercentile: 0.35,
  modelConfidence: 0.95,
  modelEntropy: 0.1,
  modelNeighborAgreement: 0.9,
  modelPredictionUsed: 1,
  modelGaussianLogOdds: -3,
};

/** Each numeric signal moved towards "more likely wrong": larger distances and percentiles, weaker votes. */
const moreUncertain: { readonly [K in keyof Signals]: (v: number) => number } = {
  meanKnnDistance: (v) => v + 0.3,
  kthKnnDistance: (v) => v + 0.3,
  densityPercentile: (v) => v + 0.5,
  kthKnnPercentile: (v) => v + 0.5,
  relativeDensity: (v) => v + 0.5,
  relativeDensityPercentile: (v) => v + 0.5,
  labelAgreement: (v) => v - 0.5,
  labelEntropy: (v) => v + 0.5,
  labelMargin: (v) => v - 0.5,
  reverseNeighborConsistency: (v) => v - 0.5,
  mahalanobisPercentile: (v) => v + 0.5,
  relativeMahalanobisPercentile: (v) => v + 0.5,
  modelConfidence: (v) => v - 0.5,
  modelEntropy: (v) => v + 0.5,
  modelNeighborAgreement: (v) => v - 0.5,
  modelPredictionUsed: (v) => v,
  modelGaussianLogOdds: (v) => v + 2,
};

test('every combination feature is oriented as uncertainty', () => {
  const base = featureVector(confident, COMBINATION_FEATURE_NAMES);
  const movedBy = new Map<string, string[]>();
  for (const field of Object.keys(moreUncertain) as (keyof Signals)[]) {
    const v = confident[field];
    assert.ok(v !== null);
    const worse = featureVector({ ...confident, [field]: moreUncertain[field](v) }, COMBINATION_FEATURE_NAMES);
    COMBINATION_FEATURE_NAMES.forEach((name, f) => {
      const d = (worse[f] as number) - (base[f] as number);
      assert.ok(d >= 0, `${name} decreases when ${field} becomes more uncertain`);
      if (d > 0) movedBy.set(name, [...(movedBy.get(name) ?? []), field]);
    });
  }
  // Each feature reads some signal (so the check above tested it).
  for (const name of COMBINATION_FEATURE_NAMES) assert.ok(movedBy.has(name), `${name} moved with no signal`);
  assert.deepEqual(Object.keys(COMBINATION_FEATURES), COMBINATION_FEATURE_NAMES);
});

test('null label signals and null radii give the worst value, 1', () => {
  const unlabelled: Signals = { ...confident, labelAgreement: null, labelEntropy: null, labelMargin: null, reverseNeighborConsistency: null };
  const nullable = ['label_disagreement', 'label_entropy', 'margin_uncertainty', 'reverse_neighbor_inconsistency'];
  assert.deepEqual(featureVector(unlabelled, nullable), [1, 1, 1, 1]);
  // 1 is the worst a present signal can give.
  const worst: Signals = { ...confident, labelAgreement: 0, labelEntropy: 1, labelMargin: 0, reverseNeighborConsistency: 0 };
  assert.deepEqual(featureVector(worst, nullable), [1, 1, 1, 1]);
  // The label-free features do not care.
  assert.deepEqual(featureVector(unlabelled, ['density_percentile', 'kth_percentile']), [0.2, 0.25]);
});

test('featureVector: hand values, in the order asked, and finite at distance 0', () => {
  assert.deepEqual(featureVector(confident, ['margin_uncertainty', 'density_percentile', 'margin_uncertainty']), [1 - 0.8, 0.2, 1 - 0.8]);
  assert.deepEqual(featureVector(confident, COMBINATION_FEATURE_NAMES), [0.2, 0.25, 0.3, Math.log(0.1 + 1e-6), 1 - 0.9, 0.2, 1 - 0.8, 1 - 0.9, 0.3, 0.35]);
  const [atZero] = featureVector({ ...confident, meanKnnDistance: 0 }, ['log_mean_knn_distance']);
  assert.equal(atZero, Math.log(1e-6));
  assert.deepEqual(featureVector(confident, []), []);
});

test('unknown feature names throw, naming the feature', () => {
  assert.throws(() => featureVector(confident, ['density_percentile', 'bogus_feature']), (e: unknown) => e instanceof RangeError && e.message.includes('bogus_feature'));
  // Names on Object.prototype are not features.
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    assert.throws(() => featureVector(confident, [name]), (e: unknown) => e instanceof RangeError && e.message.includes(name), name);
  }
  const combination = (features: string[]): Combination => ({
    kind: 'logistic',
    features,
    mean: features.map(() => 0),
    scale: features.map(() => 1),
    weights: features.map(() => 1),
    bias: 0,
    isotonic: { x: [0], y: [1] },
    fit: {},
  });
  assert.doesNotThrow(() => checkCombination(combination([...COMBINATION_FEATURE_NAMES])));
  assert.throws(
    () => checkCombination(combination(['density_percentile', 'mystery_a', 'toString', 'mystery_b'])),
    (e: unknown) => e instanceof RangeError && ['mystery_a', 'mystery_b', 'toString'].every((n) => e.message.includes(n)),
  );
  assert.throws(() => combinedErrorProbability(combination(['mystery_c']), confident), (e: unknown) => e instanceof RangeError && e.message.includes('mystery_c'));
});

test('combinedErrorProbability equals sigmoid(bias + Σ w (x - mean) / scale) by hand', () => {
  const c: Combination = {
    kind: 'logistic',
    features: ['label_disagreement', 'density_percentile', 'log_mean_knn_distance'],
    mean: [0.2, 0.5, -2],
    scale: [0.1, 0.25, 0.5],
    weights: [1.5, 0.8, -0.3],
    bias: -1.2,
    isotonic: { x: [0], y: [1] },
    fit: {},
  };
  const rnd = seededRandom(51);
  for (let t = 0; t < 200; t++) {
    const s: Signals = { ...confident, labelAgreement: rnd(), densityPercentile: rnd(), meanKnnDistance: rnd() * 2 };
    const x = [1 - (s.labelAgreement as number), s.densityPercentile, Math.log(s.meanKnnDistance + 1e-6)];
    const z = -1.2 + (1.5 * (x[0] as number - 0.2)) / 0.1 + (0.8 * (x[1] as number - 0.5)) / 0.25 + (-0.3 * (x[2] as number + 2)) / 0.5;
    const want = 1 / (1 + Math.exp(-z));
    assert.ok(Math.abs(combinedErrorProbability(c, s) - want) < 1e-14);
    assert.ok(Math.abs(errorProbabilityOfFeatures(c, x) - want) < 1e-14);
  }
  // Exactly at the means: sigmoid(bias).
  assert.equal(errorProbabilityOfFeatures(c, [0.2, 0.5, -2]), sigmoid(-1.2));
});

test('sigmoid is stable and in [0, 1] at extreme arguments', () => {
  assert.equal(sigmoid(0), 0.5);
  for (const t of [-1e6, -800, -40, 40, 800, 1e6]) {
    const v = sigmoid(t);
    assert.ok(Number.isFinite(v) && v >= 0 && v <= 1);
    assert.ok(Math.abs(v + sigmoid(-t) - 1) < 1e-15);
  }
  for (let t = -30; t <= 30; t += 0.37) assert.ok(Math.abs(sigmoid(t) - logistic(t)) < 1e-15);
});
