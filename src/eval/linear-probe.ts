import { seededRandom, shuffleInPlace } from '../util/random.js';

/**
 * The downstream probe: multinomial logistic (softmax) regression on frozen embeddings,
 * trained with mini-batch Adam on standardised features. Deterministic for a given seed.
 */
export interface ProbeOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** L2 penalty on the weights. */
  weightDecay: number;
  seed: number;
}

export const DEFAULT_PROBE: ProbeOptions = { epochs: 30, batchSize: 256, learningRate: 0.01, weightDecay: 1e-4, seed: 1 };

export interface LinearProbe {
  readonly dim: number;
  readonly numClasses: number;
  /** Class probabilities for n rows (row-major n x numClasses). */
  predictProba(x: Float32Array, n: number): Float64Array;
  predict(x: Float32Array, n: number): Int32Array;
}

function softmaxRow(logits: Float64Array, off: number, c: number): void {
  let max = -Infinity;
  for (let j = 0; j < c; j++) max = Math.max(max, logits[off + j] as number);
  let sum = 0;
  for (let j = 0; j < c; j++) {
    const e = Math.exp((logits[off + j] as number) - max);
    logits[off + j] = e;
    sum += e;
  }
  for (let j = 0; j < c; j++) logits[off + j] = (logits[off + j] as number) / sum;
}

/** Trains the probe on n rows of `dim` features with integer labels in [0, numClasses). */
export function trainLinearProbe(
  x: Float32Array,
  labels: ArrayLike<number>,
  n: number,
  dim: number,
  numClasses: number,
  opts: ProbeOptions = DEFAULT_PROBE,
  signal?: AbortSignal,
): LinearProbe {
  if (x.length !== n * dim || labels.length !== n) throw new RangeError('probe: shapes do not match');
  // Standardise each feature with the training mean and standard deviation.
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) + (x[i * dim + d] as number) / n;
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) std[d] = (std[d] as number) + ((x[i * dim + d] as number) - (mean[d] as number)) ** 2 / n;
  for (let d = 0; d < dim; d++) std[d] = Math.sqrt(std[d] as number) || 1;
  const z = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) z[i * dim + d] = ((x[i * dim + d] as number) - (mean[d] as number)) / (std[d] as number);

  const c = numClasses;
  const W = new Float64Array(dim * c); // W[d * c + j]
  const b = new Float64Array(c);
  const mW = new Float64Array(W.length);
  const vW = new Float64Array(W.length);
  const mb = new Float64Array(c);
  const vb = new Float64Array(c);
  const gW = new Float64Array(W.length);
  const gb = new Float64Array(c);
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(opts.seed);
  const logits = new Float64Array(opts.batchSize * c);
  let step = 0;
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    if (signal?.aborted === true) throw new Error('probe training cancelled');
    shuffleInPlace(order, rand);
    for (let start = 0; start < n; start += opts.batchSize) {
      const m = Math.min(opts.batchSize, n - start);
      gW.fill(0);
      gb.fill(0);
      for (let r = 0; r < m; r++) {
        const row = order[start + r] as number;
        const off = r * c;
        for (let j = 0; j < c; j++) logits[off + j] = b[j] as number;
        for (let d = 0; d < dim; d++) {
          const v = z[row * dim + d] as number;
          if (v === 0) continue;
          for (let j = 0; j < c; j++) logits[off + j] = (logits[off + j] as number) + v * (W[d * c + j] as number);
        }
        softmaxRow(logits, off, c);
        const y = labels[row] as number;
        logits[off + y] = (logits[off + y] as number) - 1; // dL/dlogits
        for (let j = 0; j < c; j++) gb[j] = (gb[j] as number) + (logits[off + j] as number) / m;
        for (let d = 0; d < dim; d++) {
          const v = (z[row * dim + d] as number) / m;
          for (let j = 0; j < c; j++) gW[d * c + j] = (gW[d * c + j] as number) + v * (logits[off + j] as number);
        }
      }
      step++;
      const lr = (opts.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
      for (let k = 0; k < W.length; k++) {
        const g = (gW[k] as number) + opts.weightDecay * (W[k] as number);
        mW[k] = beta1 * (mW[k] as number) + (1 - beta1) * g;
        vW[k] = beta2 * (vW[k] as number) + (1 - beta2) * g * g;
        W[k] = (W[k] as number) - (lr * (mW[k] as number)) / (Math.sqrt(vW[k] as number) + eps);
      }
      for (let j = 0; j < c; j++) {
        const g = gb[j] as number;
        mb[j] = beta1 * (mb[j] as number) + (1 - beta1) * g;
        vb[j] = beta2 * (vb[j] as number) + (1 - beta2) * g * g;
        b[j] = (b[j] as number) - (lr * (mb[j] as number)) / (Math.sqrt(vb[j] as number) + eps);
      }
    }
  }

  const predictProba = (q: Float32Array, rows: number): Float64Array => {
    if (q.length !== rows * dim) throw new RangeError('probe: shapes do not match');
    const out = new Float64Array(rows * c);
    for (let r = 0; r < rows; r++) {
      const off = r * c;
      for (let j = 0; j < c; j++) out[off + j] = b[j] as number;
      for (let d = 0; d < dim; d++) {
        const v = ((q[r * dim + d] as number) - (mean[d] as number)) / (std[d] as number);
        for (let j = 0; j < c; j++) out[off + j] = (out[off + j] as number) + v * (W[d * c + j] as number);
      }
      softmaxRow(out, off, c);
    }
    return out;
  };
  return {
    dim,
    numClasses: c,
    predictProba,
    predict(q, rows) {
      const p = predictProba(q, rows);
      const out = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let j = 1; j < c; j++) if ((p[r * c + j] as number) > (p[r * c + best] as number)) best = j;
        out[r] = best;
      }
      return out;
    },
  };
}

/** Share of predictions equal to the labels. */
export function accuracy(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (pred.length !== labels.length || pred.length === 0) throw new RangeError('accuracy: lengths differ or are empty');
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) ok++;
  return ok / pred.length;
}
