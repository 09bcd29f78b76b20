import { jaccard, labelVote, ncUncertainty } from '../scoring/index.js';
import { seededRandom } from '../util/random.js';

/**
 * The baseline uncertainty scores of the evaluation, each oriented so that higher means
 * "more likely wrong". Pure functions of neighbour lists and embeddings.
 */

/** AvgDist_k (repreli): mean distance to the k nearest references (distances ascending). */
export function avgDistance(distances: readonly number[], k: number): number {
  if (distances.length < k) throw new RangeError(`avgDistance needs ${k} neighbours, got ${distances.length}`);
  let s = 0;
  for (let i = 0; i < k; i++) s += distances[i] as number;
  return s / k;
}

/** Deep kNN (Sun et al. 2022): the distance to the k-th nearest reference. */
export function kthDistance(distances: readonly number[], k: number): number {
  const d = distances[k - 1];
  if (d === undefined) throw new RangeError(`kthDistance needs ${k} neighbours, got ${distances.length}`);
  return d;
}

/**
 * 1 - (top share - second share) of the distance-weighted neighbour vote (the same weights
 * 1 / (distance + 1e-3) as the worker's label agreement; labels -1 do not vote). 1 when no
 * neighbour has a label.
 */
export function voteMarginUncertainty(labels: readonly number[], distances: readonly number[], numLabels: number): number {
  return 1 - labelVote(labels, distances, numLabels).margin;
}

/** The pairwise Jaccard of kNN id lists and NC live in scoring (pure signals); re-exported for the evaluation's callers. */
export { jaccard, ncUncertainty };


/** L2 norm of each of n rows of `dim` values. */
export function rowNorms(x: Float32Array, n: number, dim: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (x[i * dim + d] as number) ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/** n seeded uniform draws: the chance baseline. */
export function randomScores(n: number, seed: number): Float64Array {
  const rand = seededRandom(seed);
  return Float64Array.from({ length: n }, () => rand());
}

/** MSP (Hendrycks & Gimpel 2017): 1 − the largest probability of each of n rows of `numLabels` probabilities. */
export function mspUncertainty(probs: ArrayLike<number>, n: number, numLabels: number): Float64Array {
  if (probs.length !== n * numLabels) throw new RangeError(`mspUncertainty: ${probs.length} values are not ${n} rows of ${numLabels}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let max = 0;
    for (let c = 0; c < numLabels; c++) max = Math.max(max, probs[i * numLabels + c] as number);
    out[i] = 1 - max;
  }
  return out;
}

/** Shannon entropy (nats, 0·log 0 = 0) of each of n rows of `numLabels` probabilities. */
export function predictiveEntropy(probs: ArrayLike<number>, n: number, numLabels: number): Float64Array {
  if (probs.length !== n * numLabels) throw new RangeError(`predictiveEntropy: ${probs.length} values are not ${n} rows of ${numLabels}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = 0;
    for (let c = 0; c < numLabels; c++) {
      const p = probs[i * numLabels + c] as number;
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}
