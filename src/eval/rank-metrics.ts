/**
 * Rank statistics between an uncertainty score and a per-sample error: Kendall's tau-b,
 * Spearman's rho and the AUROC of separating two groups. All handle ties (a 0/1 error has two
 * values only), all are O(n log n), and all return NaN where the statistic is undefined
 * (fewer than two samples, or one side constant).
 */

function checkLengths(x: ArrayLike<number>, y: ArrayLike<number>): void {
  if (x.length !== y.length) throw new RangeError(`lengths differ: ${x.length} and ${y.length}`);
}

/** Row order sorting `values` ascending (stable). */
function argsort(values: ArrayLike<number>): Int32Array {
  const order = Int32Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => (values[a] as number) - (values[b] as number) || a - b);
  return order;
}

/** 1-based ranks, tied values sharing the mean of the ranks they span. */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = argsort(values);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i + 1;
    const v = values[order[i] as number] as number;
    while (j < n && values[order[j] as number] === v) j++;
    const r = (i + 1 + j) / 2; // mean of ranks i+1 .. j
    for (let t = i; t < j; t++) ranks[order[t] as number] = r;
    i = j;
  }
  return ranks;
}

/** Pearson correlation of two equally long series; NaN when either is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y);
  const n = x.length;
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] as number;
    my += y[i] as number;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = (x[i] as number) - mx;
    const b = (y[i] as number) - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rho: the Pearson correlation of the average ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

/** Number of pairs within runs of equal values of `values` taken in `order`. */
function tiedPairs(values: ArrayLike<number>, order: Int32Array, sameGroup?: (a: number, b: number) => boolean): number {
  let pairs = 0;
  let run = 1;
  for (let i = 1; i <= order.length; i++) {
    const a = order[i - 1] as number;
    const b = order[i];
    if (b !== undefined && values[a] === values[b] && (sameGroup === undefined || sameGroup(a, b))) {
      run++;
    } else {
      pairs += (run * (run - 1)) / 2;
      run = 1;
    }
  }
  return pairs;
}

/**
 * Kendall's tau-b (Knight's O(n log n) algorithm): sort by x then y, count the pairs tied in
 * x, in y and in both, and count the discordant pairs as the exchanges a merge sort by y
 * makes. tau_b = (concordant - discordant) / sqrt((n0 - tiesX) (n0 - tiesY)).
 */
export function kendallTauB(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y);
  const n = x.length;
  if (n < 2) return NaN;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (x[a] as number) - (x[b] as number) || (y[a] as number) - (y[b] as number));
  const n0 = (n * (n - 1)) / 2;
  const tiesX = tiedPairs(x, order);
  const tiesXY = tiedPairs(x, order, (a, b) => y[a] === y[b]);
  // Merge sort `order` by y (stable), counting the pairs that have to be exchanged: those
  // with x strictly before and y strictly greater, i.e. the discordant pairs.
  let swaps = 0;
  let src = order;
  let dst = new Int32Array(n);
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        const yi = y[src[i] as number] as number;
        const yj = y[src[j] as number] as number;
        if (yj < yi) {
          swaps += mid - i;
          dst[k++] = src[j++] as number;
        } else {
          dst[k++] = src[i++] as number;
        }
      }
      while (i < mid) dst[k++] = src[i++] as number;
      while (j < hi) dst[k++] = src[j++] as number;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  const tiesY = tiedPairs(y, src);
  const denom = Math.sqrt((n0 - tiesX) * (n0 - tiesY));
  if (denom === 0) return NaN;
  // concordant - discordant = n0 - tiesX - tiesY + tiesXY - 2 * discordant
  return (n0 - tiesX - tiesY + tiesXY - 2 * swaps) / denom;
}

/**
 * Area under the ROC curve of `score` for telling positives from negatives: the chance that
 * a random positive scores higher than a random negative, ties counting one half
 * (Mann-Whitney U from average ranks). NaN without both a positive and a negative.
 */
export function auroc(score: ArrayLike<number>, positive: ArrayLike<boolean | number>): number {
  if (score.length !== positive.length) throw new RangeError(`lengths differ: ${score.length} and ${positive.length}`);
  const ranks = averageRanks(score);
  let p = 0;
  let rankSum = 0;
  for (let i = 0; i < score.length; i++) {
    if (positive[i] === true || positive[i] === 1) {
      p++;
      rankSum += ranks[i] as number;
    }
  }
  const q = score.length - p;
  if (p === 0 || q === 0) return NaN;
  return (rankSum - (p * (p + 1)) / 2) / (p * q);
}
