/**
 * A point's mean kNN distance relative to its neighbours' own mean kNN distances (as in the
 * local outlier factor): about 1 inside a cluster of any density, larger outside it.
 * Shared by the builder (for the references) and scoring (for queries) so both use one formula.
 */
export function relativeDensity(meanDistance: number, neighboursMeanRadius: number): number {
  // A floor keeps exact duplicates (radius 0) finite.
  return meanDistance / Math.max(neighboursMeanRadius, 1e-9);
}
