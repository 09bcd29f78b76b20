import { seededRandom } from '../util/random.js';

/**
 * A Gaussian mixture with diagonal covariances, fitted by EM from a k-means++ start. Used by
 * the evaluation as the density baseline "LL" (uncertainty = - log-likelihood), as in the
 * repreli evaluation (which uses scikit-learn's GaussianMixture with 20 components).
 */
export interface GmmOptions {
  readonly components: number;
  /** EM iterations at most. */
  readonly maxIter: number;
  /** Stop when the mean per-sample log-likelihood improves by less than this. */
  readonly tol: number;
  /** Added to every variance after each M-step (scikit-learn's reg_covar), so no component collapses. */
  readonly varianceFloor: number;
  /** Lloyd iterations after the k-means++ seeding. */
  readonly kmeansIter: number;
  readonly seed: number;
}

export const DEFAULT_GMM: GmmOptions = { components: 20, maxIter: 100, tol: 1e-3, varianceFloor: 1e-6, kmeansIter: 10, seed: 1 };

export interface DiagonalGmm {
  readonly components: number;
  readonly dim: number;
  readonly weights: Float64Array;
  /** components x dim, row-major. */
  readonly means: Float64Array;
  /** components x dim, row-major. */
  readonly variances: Float64Array;
  /** Mean per-sample log-likelihood of the training rows before each M-step (the EM trace). */
  readonly trace: readonly number[];
  readonly converged: boolean;
  /** Log-likelihood (natural log, density) of each of n rows. */
  logLikelihood(x: Float32Array, n: number): Float64Array;
}

const LOG_2PI = Math.log(2 * Math.PI);

function sqDist(x: Float32Array, xi: number, c: Float64Array, ci: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const t = (x[xi + d] as number) - (c[ci + d] as number);
    s += t * t;
  }
  return s;
}

/**
 * Greedy k-means++ seeding (as scikit-learn does it: each new centre is the best of
 * 2 + floor(ln k) D²-sampled candidates, by the total squared distance it leaves), then
 * `iters` Lloyd steps; returns the hard assignment.
 */
function kmeans(x: Float32Array, n: number, dim: number, k: number, iters: number, rand: () => number): Int32Array {
  const centres = new Float64Array(k * dim);
  const best = new Float64Array(n).fill(Infinity);
  const trials = 2 + Math.floor(Math.log(k));
  const candidate = new Float64Array(n);
  const chosen = new Float64Array(n);
  const setCentre = (c: number, row: number): void => {
    for (let d = 0; d < dim; d++) centres[c * dim + d] = x[row * dim + d] as number;
  };
  setCentre(0, Math.floor(rand() * n));
  for (let i = 0; i < n; i++) best[i] = sqDist(x, i * dim, centres, 0, dim);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += best[i] as number;
    let bestPotential = Infinity;
    let bestRow = 0;
    for (let t = 0; t < trials; t++) {
      let r = rand() * total;
      let row = n - 1;
      for (let i = 0; i < n; i++) {
        r -= best[i] as number;
        if (r <= 0) {
          row = i;
          break;
        }
      }
      setCentre(c, row);
      let potential = 0;
      for (let i = 0; i < n; i++) {
        const v = Math.min(best[i] as number, sqDist(x, i * dim, centres, c * dim, dim));
        candidate[i] = v;
        potential += v;
      }
      if (potential < bestPotential) {
        bestPotential = potential;
        bestRow = row;
        chosen.set(candidate);
      }
    }
    setCentre(c, bestRow);
    best.set(chosen);
  }
  const assign = new Int32Array(n);
  const counts = new Float64Array(k);
  for (let it = 0; it <= iters; it++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let arg = 0;
      let min = Infinity;
      for (let c = 0; c < k; c++) {
        const dd = sqDist(x, i * dim, centres, c * dim, dim);
        if (dd < min) {
          min = dd;
          arg = c;
        }
      }
      if (assign[i] !== arg || it === 0) changed++;
      assign[i] = arg;
    }
    if (it === iters || changed === 0) break;
    centres.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assign[i] as number;
      counts[c] = (counts[c] as number) + 1;
      for (let d = 0; d < dim; d++) centres[c * dim + d] = (centres[c * dim + d] as number) + (x[i * dim + d] as number);
    }
    for (let c = 0; c < k; c++) {
      const m = counts[c] as number;
      if (m === 0) {
        // An empty cluster restarts on a random row.
        const r = Math.floor(rand() * n);
        for (let d = 0; d < dim; d++) centres[c * dim + d] = x[r * dim + d] as number;
      } else {
        for (let d = 0; d < dim; d++) centres[c * dim + d] = (centres[c * dim + d] as number) / m;
      }
    }
  }
  return assign;
}

/** Per-component log normalising constant plus log weight: log w - (d log 2pi + sum log var) / 2. */
function componentConstants(weights: Float64Array, variances: Float64Array, k: number, dim: number): Float64Array {
  const out = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let logDet = 0;
    for (let d = 0; d < dim; d++) logDet += Math.log(variances[c * dim + d] as number);
    out[c] = Math.log(weights[c] as number) - 0.5 * (dim * LOG_2PI + logDet);
  }
  return out;
}

/**
 * Log joint densities log(w_c N(x_i | c)) of row i into `out` (length k); returns their
 * log-sum-exp, the row's log-likelihood.
 */
function rowLogJoint(x: Float32Array, i: number, dim: number, k: number, means: Float64Array, invVar: Float64Array, consts: Float64Array, out: Float64Array): number {
  let max = -Infinity;
  const off = i * dim;
  for (let c = 0; c < k; c++) {
    let q = 0;
    const co = c * dim;
    for (let d = 0; d < dim; d++) {
      const t = (x[off + d] as number) - (means[co + d] as number);
      q += t * t * (invVar[co + d] as number);
    }
    const v = (consts[c] as number) - 0.5 * q;
    out[c] = v;
    if (v > max) max = v;
  }
  let s = 0;
  for (let c = 0; c < k; c++) s += Math.exp((out[c] as number) - max);
  return max + Math.log(s);
}

/** Fits the mixture to n rows of `dim` values (row-major). Deterministic for a given seed. */
export function fitDiagonalGmm(x: Float32Array, n: number, dim: number, opts: GmmOptions = DEFAULT_GMM, signal?: AbortSignal): DiagonalGmm {
  const k = opts.components;
  if (x.length !== n * dim) throw new RangeError('gmm: shapes do not match');
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`gmm: ${k} components for ${n} rows`);
  const rand = seededRandom(opts.seed);
  const assign = kmeans(x, n, dim, k, opts.kmeansIter, rand);

  // Initial parameters from the hard assignment (responsibilities 0/1).
  const weights = new Float64Array(k);
  const means = new Float64Array(k * dim);
  const variances = new Float64Array(k * dim);
  const nk = new Float64Array(k);
  const sx = new Float64Array(k * dim);
  const sxx = new Float64Array(k * dim);
  for (let i = 0; i < n; i++) {
    const c = assign[i] as number;
    nk[c] = (nk[c] as number) + 1;
    for (let d = 0; d < dim; d++) {
      const v = x[i * dim + d] as number;
      sx[c * dim + d] = (sx[c * dim + d] as number) + v;
      sxx[c * dim + d] = (sxx[c * dim + d] as number) + v * v;
    }
  }
  const mStep = (): void => {
    for (let c = 0; c < k; c++) {
      const m = Math.max(nk[c] as number, 1e-10);
      weights[c] = m / n;
      for (let d = 0; d < dim; d++) {
        const j = c * dim + d;
        const mu = (sx[j] as number) / m;
        means[j] = mu;
        variances[j] = Math.max(0, (sxx[j] as number) / m - mu * mu) + opts.varianceFloor;
      }
    }
  };
  mStep();

  const trace: number[] = [];
  const logJoint = new Float64Array(k);
  const invVar = new Float64Array(k * dim);
  let converged = false;
  for (let iter = 0; iter < opts.maxIter; iter++) {
    if (signal?.aborted === true) throw new Error('gmm fit cancelled');
    for (let j = 0; j < invVar.length; j++) invVar[j] = 1 / (variances[j] as number);
    const consts = componentConstants(weights, variances, k, dim);
    nk.fill(0);
    sx.fill(0);
    sxx.fill(0);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const ll = rowLogJoint(x, i, dim, k, means, invVar, consts, logJoint);
      total += ll;
      for (let c = 0; c < k; c++) {
        const r = Math.exp((logJoint[c] as number) - ll);
        if (r < 1e-12) continue; // negligible responsibility: skip its sums
        nk[c] = (nk[c] as number) + r;
        const co = c * dim;
        const off = i * dim;
        for (let d = 0; d < dim; d++) {
          const v = x[off + d] as number;
          sx[co + d] = (sx[co + d] as number) + r * v;
          sxx[co + d] = (sxx[co + d] as number) + r * v * v;
        }
      }
    }
    const mean = total / n;
    const prev = trace[trace.length - 1];
    trace.push(mean);
    if (prev !== undefined && mean - prev < opts.tol) {
      converged = true;
      break;
    }
    mStep();
  }

  const finalInvVar = Float64Array.from(variances, (v) => 1 / v);
  const finalConsts = componentConstants(weights, variances, k, dim);
  return {
    components: k,
    dim,
    weights,
    means,
    variances,
    trace,
    converged,
    logLikelihood(q: Float32Array, rows: number): Float64Array {
      if (q.length !== rows * dim) throw new RangeError('gmm: shapes do not match');
      const out = new Float64Array(rows);
      const buf = new Float64Array(k);
      for (let i = 0; i < rows; i++) out[i] = rowLogJoint(q, i, dim, k, means, finalInvVar, finalConsts, buf);
      return out;
    },
  };
}
