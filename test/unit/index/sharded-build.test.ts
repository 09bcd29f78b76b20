import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { normalizeRows } from '../../../src/encoder/index.js';
import { buildBundle, loadBundle, readPointer, type BuildInput } from '../../../src/index/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-shards-'));
after(() => rmSync(root, { recursive: true, force: true }));

const DIM = 16;

function clustered(n: number, seed: number, prefix = 'r'): BuildInput & { x: Float32Array } {
  const rnd = seededRandom(seed);
  const x = new Float32Array(n * DIM);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * 3);
    labels.push(c);
    for (let d = 0; d < DIM; d++) x[i * DIM + d] = (d === c ? 2 : 0) + gaussian(rnd) * 0.7;
  }
  normalizeRows(x, DIM);
  return {
    x,
    embeddings: x,
    dim: DIM,
    ids: labels.map((_, i) => `${prefix}${i}`),
    labels,
    labelNames: ['a', 'b', 'c'],
    model: { name: 't', version: '1', sha256: 'c'.repeat(64) },
    source: {},
    k: 8,
    densityWeight: 0.5,
  };
}

const cos = (x: Float32Array, i: number, q: ArrayLike<number>): number => {
  let s = 0;
  for (let d = 0; d < DIM; d++) s += (x[i * DIM + d] as number) * (q[d] as number);
  return 1 - s;
};

function concat(a: BuildInput, b: BuildInput): BuildInput {
  const embeddings = new Float32Array(a.embeddings.length + b.embeddings.length);
  embeddings.set(a.embeddings);
  embeddings.set(b.embeddings, a.embeddings.length);
  return { ...a, embeddings, ids: [...a.ids, ...b.ids], labels: [...(a.labels ?? []), ...(b.labels ?? [])] };
}

/**
 * The largest difference between two lists of 1001 quantiles, outside the outer 1% on each
 * side (the extremes are single references, where HNSW's approximation shows most).
 */
const gap = (a: readonly number[], b: readonly number[]): number => {
  assert.equal(a.length, b.length);
  return Math.max(...a.slice(10, -10).map((v, i) => Math.abs(v - (b[i + 10] as number))));
};
const near = (a: readonly number[], b: readonly number[], tol: number): boolean => {
  const g = gap(a, b);
  if (g > tol) console.error(`quantiles differ by up to ${g} (tolerance ${tol})`);
  return g <= tol;
};

test('a small build stays one index.hnsw in format 1, which older workers read', async () => {
  const res = await buildBundle(join(root, 'single'), clustered(300, 1));
  assert.equal(res.manifest.format_version, 1);
  assert.equal(res.manifest.hnsw.shards, undefined);
  assert.ok('index.hnsw' in res.manifest.files);
});

test('a sharded build in threads: format 2, one file per shard, merged searches agree with brute force, statistics match the single-index build', async () => {
  const input = clustered(3000, 2);
  const phases = new Map<string, number>();
  const sharded = await buildBundle(join(root, 'sharded'), { ...input, hnsw: { m: 16, efConstruction: 200, randomSeed: 100, shards: 2 } }, {
    threads: 2,
    onProgress: (p, done, total) => {
      assert.ok(done <= total, `${p}: ${done} of ${total}`);
      phases.set(p, done / total);
    },
  });
  assert.deepEqual([...phases.keys()], ['insert', 'leave-one-out', 'write']);
  assert.ok([...phases.values()].every((v) => v === 1), 'every phase reports completion');
  const m = sharded.manifest;
  assert.equal(m.format_version, 2);
  assert.equal(m.hnsw.shards, 2);
  assert.deepEqual(Object.keys(m.files).sort(), ['ids.json', 'index-0.hnsw', 'index-1.hnsw', 'labels.json', 'loo-kth.f32', 'loo-radii.f32']);

  const snap = await loadBundle(join(root, 'sharded'), sharded.version, { efSearch: 100 });
  assert.equal(snap.shards, 2);
  const rnd = seededRandom(5);
  let hits = 0;
  for (let t = 0; t < 100; t++) {
    const q = normalizeRows(Float32Array.from({ length: DIM }, () => rnd() * 2 - 1), DIM);
    const got = snap.search(q, 8);
    const brute = Array.from({ length: 3000 }, (_, i) => [i, cos(input.x, i, q)] as const)
      .sort((a, b) => a[1] - b[1])
      .slice(0, 8);
    hits += got.ids.filter((id) => brute.some(([i]) => `r${i}` === id)).length;
    for (let j = 1; j < got.distances.length; j++) assert.ok((got.distances[j] as number) >= (got.distances[j - 1] as number));
    assert.equal(got.labels?.[0], input.labels?.[Number(got.ids[0]?.slice(1))]);
  }
  assert.ok(hits / 800 >= 0.98, `recall@8 ${hits / 800}`);

  // The leave-one-out pass ran against all references, not one shard: the same statistics
  // (up to HNSW approximation) as one index on one thread.
  const single = await buildBundle(join(root, 'sharded-ref'), input, { threads: 1, version: 'ref' });
  const a = m.reference_stats;
  const b = single.manifest.reference_stats;
  assert.ok(near(a.loo_mean_knn_quantiles, b.loo_mean_knn_quantiles, 2e-3));
  assert.ok(near(a.loo_kth_knn_quantiles, b.loo_kth_knn_quantiles, 2e-3));
  assert.ok(near(a.loo_relative_density_quantiles, b.loo_relative_density_quantiles, 2e-2));

  // One index, parallel leave-one-out (the default with threads) gives the same too.
  const oneShard = await buildBundle(join(root, 'sharded-ref'), input, { threads: 2, version: 'one' });
  assert.equal(oneShard.manifest.format_version, 1);
  assert.ok(near(oneShard.manifest.reference_stats.loo_mean_knn_quantiles, b.loo_mean_knn_quantiles, 1e-6));
});

test('cancelling a threaded build mid-insert stops the threads and leaves no partial bundle', async () => {
  const dir = join(root, 'cancel');
  await buildBundle(dir, clustered(200, 3), { version: 'v1' });
  const ac = new AbortController();
  await assert.rejects(
    buildBundle(dir, clustered(20_000, 4), {
      version: 'v2',
      threads: 2,
      signal: ac.signal,
      onProgress: (p, done) => {
        if (p === 'insert' && done >= 1000) ac.abort();
      },
    }),
    (err: Error & { code?: string }) => err.code === 'QUALM_ABORTED',
  );
  assert.equal(await readPointer(dir), 'v1');
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v1']);
});

test('incremental build equals a full build over the union in count, ids, labels and statistics', async () => {
  const dir = join(root, 'inc');
  const first = clustered(2000, 6, 'a');
  const more = clustered(600, 7, 'b');
  for (const [threads, shards] of [
    [1, 1],
    [2, 1],
    [2, 2],
  ] as const) {
    const base = await buildBundle(dir, { ...first, hnsw: { m: 16, efConstruction: 200, randomSeed: 100, shards } }, { threads, version: `base-${threads}-${shards}` });
    const inc = await buildBundle(dir, { ...more, from: { dir, version: base.version } }, { threads, version: `inc-${threads}-${shards}` });
    const full = await buildBundle(dir, { ...concat(first, more), hnsw: { m: 16, efConstruction: 200, randomSeed: 100, shards } }, { threads, version: `full-${threads}-${shards}` });
    assert.equal(inc.manifest.count, 2600);
    assert.equal(inc.manifest.hnsw.shards ?? 1, shards, 'the shards of the base are extended');
    assert.deepEqual(inc.manifest.source, { incremental: { from: base.version, previous_count: 2000, added: 600 } });
    const snapInc = await loadBundle(dir, inc.version, { efSearch: 100 });
    const snapFull = await loadBundle(dir, full.version, { efSearch: 100 });
    assert.deepEqual(snapInc.referenceIds, snapFull.referenceIds);
    assert.deepEqual(snapInc.referenceLabels, snapFull.referenceLabels);
    const a = inc.manifest.reference_stats;
    const b = full.manifest.reference_stats;
    assert.ok(near(a.loo_mean_knn_quantiles, b.loo_mean_knn_quantiles, 2e-3), 'mean kNN quantiles');
    assert.ok(near(a.loo_kth_knn_quantiles, b.loo_kth_knn_quantiles, 2e-3), 'k-th kNN quantiles');
    // Old references' vectors were read back, not re-embedded: row 5 finds itself.
    const hit = snapInc.search(first.x.subarray(5 * DIM, 6 * DIM), 1);
    assert.equal(hit.ids[0], 'a5');
    assert.ok((hit.distances[0] as number) < 1e-5);
    const newHit = snapInc.search(more.x.subarray(3 * DIM, 4 * DIM), 1);
    assert.equal(newHit.ids[0], 'b3');
  }
});

test('an incremental build refuses another model, dimension or label set, and ids already in the bundle', async () => {
  const dir = join(root, 'inc-bad');
  const base = await buildBundle(dir, clustered(300, 8, 'a'), { version: 'base' });
  const from = { dir, version: base.version };
  const more = clustered(50, 9, 'b');
  await assert.rejects(buildBundle(dir, { ...more, from, model: { ...more.model, sha256: 'd'.repeat(64) } }), /cannot extend bundle base: it was built with model sha256 c+, these references with d+/);
  await assert.rejects(buildBundle(dir, { ...more, from, labelNames: ['a', 'b', 'x'] }), /cannot extend bundle base: its label names are \["a","b","c"\]/);
  await assert.rejects(buildBundle(dir, { ...more, from, labels: null, labelNames: null }), /label names/);
  await assert.rejects(buildBundle(dir, { ...more, from, ids: more.ids.map((id, i) => (i === 7 ? 'a12' : id)) }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'QUALM_DATASET_INVALID');
    assert.match(err.message, /reference id "a12" is already in bundle base/);
    return true;
  });
  const wide = clustered(50, 9, 'b');
  await assert.rejects(
    buildBundle(dir, { ...wide, from, dim: 8, embeddings: wide.embeddings.subarray(0, 50 * 8) }),
    /it has dimension 16, these references 8/,
  );
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'base']);
});

test('a subsampled build keeps the requested rows and records the sampling in source', async () => {
  const input = clustered(1000, 10);
  const res = await buildBundle(join(root, 'sub'), { ...input, subsample: { method: 'stratified', size: 200, seed: 1, minPerLabel: 10 } });
  assert.equal(res.manifest.count, 200);
  assert.deepEqual(res.manifest.source, { subsample: { method: 'stratified', size: 200, seed: 1, minPerLabel: 10, of: 1000, kept: 200 } });
});
