/**
 * View consistency: how much a sample's neighbourhood and embedding move under test-time
 * views (small shifts, crops, noise; see encoder/views.ts) or across encoders. Pure functions
 * of id lists and embeddings.
 */

/** |A ∩ B| / |A ∪ B| of two id lists (each without duplicates); 1 for two empty lists. */
export function jaccard(a: readonly string[], b: readonly string[]): number {
  const set = new Set(a);
  let inter = 0;
  for (const id of b) if (set.has(id)) inter++;
  const union = a.length + b.length - inter;
  return union === 0 ? 1 : inter / union;
}

/** The mean Jaccard similarity over all pairs of id sets; `what` names them in the error for fewer than two. */
function meanPairwiseJaccard(idSets: readonly (readonly string[])[], what: string): number {
  const m = idSets.length;
  if (m < 2) throw new RangeError(`${what} needs at least two id sets, got ${m}`);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) sum += jaccard(idSets[i] as readonly string[], idSets[j] as readonly string[]);
  }
  return sum / ((m * (m - 1)) / 2);
}

/**
 * The mean, over all pairs of views, of the Jaccard similarity of their kNN id sets: 1 when
 * every view finds the same neighbours, 0 when no two share one. A similarity; use
 * 1 - viewJaccard as an uncertainty. Needs at least two views.
 */
export function viewJaccard(idSets: readonly (readonly string[])[]): number {
  return meanPairwiseJaccard(idSets, 'view Jaccard');
}

/**
 * Neighbourhood consistency (Park et al., UAI 2024; repreli's NC_k) as an uncertainty,
 * 1 - NC: NC is the mean, over all pairs of encoders, of the Jaccard similarity of the
 * sample's k-nearest reference-id sets in each encoder's space (the references being the
 * same points embedded by each encoder). Needs at least two encoders.
 */
export function ncUncertainty(neighbourIds: readonly (readonly string[])[]): number {
  return 1 - meanPairwiseJaccard(neighbourIds, 'neighbourhood consistency (one set per encoder)');
}

/**
 * The mean cosine distance of T view embeddings (rows t * dim .. (t + 1) * dim of
 * `embeddings`) to the direction of their mean: 0 when all views embed identically, up to 1
 * when they cancel out. For unit-norm rows it equals 1 - |mean row|. Rows need not be unit
 * norm (each is compared by cosine); a zero row counts as cosine 0, and so does every row
 * when the mean is the zero vector (dispersion 1).
 */
export function viewDispersion(embeddings: Float32Array, T: number, dim: number): number {
  if (!Number.isInteger(T) || T < 1 || !Number.isInteger(dim) || dim < 1) throw new RangeError(`view dispersion needs T >= 1 and dim >= 1, got T=${T}, dim=${dim}`);
  if (embeddings.length !== T * dim) throw new RangeError(`view dispersion got ${embeddings.length} values for ${T} views of ${dim}`);
  const mean = new Float64Array(dim);
  const norms = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const v = embeddings[t * dim + d] as number;
      s += v * v;
    }
    const norm = Math.sqrt(s);
    norms[t] = norm;
    if (norm === 0) continue;
    for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) + (embeddings[t * dim + d] as number) / norm / T;
  }
  let meanNorm = 0;
  for (let d = 0; d < dim; d++) meanNorm += (mean[d] as number) ** 2;
  meanNorm = Math.sqrt(meanNorm);
  if (meanNorm === 0) return 1;
  let dist = 0;
  for (let t = 0; t < T; t++) {
    const norm = norms[t] as number;
    let cos = 0;
    if (norm > 0) {
      for (let d = 0; d < dim; d++) cos += (embeddings[t * dim + d] as number) * (mean[d] as number);
      cos /= norm * meanNorm;
    }
    dist += 1 - cos;
  }
  // Rounding can leave -1e-16 for identical views.
  return Math.max(0, dist / T);
}
