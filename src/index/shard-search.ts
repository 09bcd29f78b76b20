import type hnswlib from 'hnswlib-node';

/**
 * The k nearest rows of query `q` over every shard, nearest first, distances clamped at 0:
 * each shard's own k nearest, then the k nearest of all. The one kNN merge, used by
 * IndexSnapshot.search on the calling thread and by the search thread on its own copies.
 */
export function searchShards(shards: readonly hnswlib.HierarchicalNSW[], q: number[], k: number): { rows: number[]; distances: number[] } {
  if (shards.length === 1) {
    // One shard: hnswlib already answers nearest first.
    const index = shards[0] as hnswlib.HierarchicalNSW;
    const m = Math.min(k, index.getCurrentCount());
    if (m <= 0) return { rows: [], distances: [] };
    const res = index.searchKnn(q, m);
    return { rows: res.neighbors, distances: res.distances.map((d) => Math.max(0, d)) };
  }
  const allRows: number[] = [];
  const allDist: number[] = [];
  for (const index of shards) {
    const m = Math.min(k, index.getCurrentCount());
    if (m <= 0) continue;
    const res = index.searchKnn(q, m);
    for (let j = 0; j < res.neighbors.length; j++) {
      allRows.push(res.neighbors[j] as number);
      allDist.push(res.distances[j] as number);
    }
  }
  const order = allDist
    .map((_, i) => i)
    .sort((a, b) => (allDist[a] as number) - (allDist[b] as number))
    .slice(0, k);
  return { rows: order.map((i) => allRows[i] as number), distances: order.map((i) => Math.max(0, allDist[i] as number)) };
}
