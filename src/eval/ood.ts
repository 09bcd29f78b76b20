import { auroc } from './rank-metrics.js';

export interface OodMetrics {
  /** AUROC of the uncertainty for telling out-of-distribution (positive) from in-distribution samples. */
  readonly auroc: number;
  /** False-positive rate (share of in-distribution samples flagged) at 95% true-positive rate. */
  readonly fpr95: number;
}

/**
 * The share of `negatives` flagged by the highest threshold t that flags (score >= t) at least
 * `tpr` of `positives`: t is the ceil(tpr * P)-th largest positive score.
 */
export function fprAtTpr(negatives: ArrayLike<number>, positives: ArrayLike<number>, tpr = 0.95): number {
  if (!(tpr > 0 && tpr <= 1)) throw new RangeError('tpr must be in (0, 1]');
  if (negatives.length === 0 || positives.length === 0) return NaN;
  const pos = Float64Array.from(positives).sort();
  const need = Math.ceil(tpr * pos.length - 1e-9);
  const t = pos[pos.length - need] as number;
  let flagged = 0;
  for (let i = 0; i < negatives.length; i++) if ((negatives[i] as number) >= t) flagged++;
  return flagged / negatives.length;
}

/** AUROC and FPR at 95% TPR of an uncertainty on in-distribution against out-of-distribution samples. */
export function oodMetrics(inDist: ArrayLike<number>, outDist: ArrayLike<number>): OodMetrics {
  const score = new Float64Array(inDist.length + outDist.length);
  const positive = new Uint8Array(score.length);
  score.set(Array.from(inDist), 0);
  score.set(Array.from(outDist), inDist.length);
  positive.fill(1, inDist.length);
  return { auroc: auroc(score, positive), fpr95: fprAtTpr(inDist, outDist, 0.95) };
}
