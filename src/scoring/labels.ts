/** Small offset so that an exact duplicate (distance 0) gets a large but finite weight. */
export const VOTE_DISTANCE_EPSILON = 1e-3;

export interface LabelVote {
  /** Label with the largest weighted vote; -1 when no neighbour has a known label. */
  readonly topLabel: number;
  /** Weighted vote share of the top label, in [0, 1]. */
  readonly share: number;
  /** Entropy of the weighted label distribution divided by log(numLabels), in [0, 1]. */
  readonly entropy: number;
  /** Share of the top label minus share of the second, in [0, 1]. */
  readonly margin: number;
}

/**
 * The weighted vote per label, weight 1 / (distance + 1e-3), and its total. Neighbours with
 * label -1 (unknown) do not vote.
 */
export function voteWeights(labels: readonly number[], distances: readonly number[], numLabels: number): { weights: Float64Array; total: number } {
  if (labels.length !== distances.length) throw new RangeError('labels and distances differ in length');
  const weights = new Float64Array(numLabels);
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    if (label < 0) continue;
    if (label >= numLabels) throw new RangeError(`label ${label} outside [0, ${numLabels})`);
    const w = 1 / ((distances[i] as number) + VOTE_DISTANCE_EPSILON);
    weights[label] = (weights[label] as number) + w;
    total += w;
  }
  return { weights, total };
}

/**
 * Distance-weighted vote of neighbour labels (see voteWeights). Ties go to the smaller label
 * index.
 */
export function labelVote(labels: readonly number[], distances: readonly number[], numLabels: number): LabelVote {
  const { weights, total } = voteWeights(labels, distances, numLabels);
  if (total === 0) return { topLabel: -1, share: 0, entropy: 1, margin: 0 };
  let top = 0;
  let entropy = 0;
  for (let c = 0; c < numLabels; c++) {
    const w = weights[c] as number;
    if (w > (weights[top] as number)) top = c;
    if (w > 0) {
      const p = w / total;
      entropy -= p * Math.log(p);
    }
  }
  let second = 0;
  for (let c = 0; c < numLabels; c++) if (c !== top && (weights[c] as number) > second) second = weights[c] as number;
  const norm = numLabels > 1 ? Math.log(numLabels) : 1;
  const share = (weights[top] as number) / total;
  return { topLabel: top, share, entropy: Math.min(1, entropy / norm), margin: share - second / total };
}
