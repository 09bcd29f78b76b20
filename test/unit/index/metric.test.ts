// The bundle metric: cosine (default), l2 or ip, stored in the manifest and used by the build, the shard threads and the loader.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { buildBundle, loadBundle, loadCurrentBundle, type BuildInput, type BundleMetric } from '../../../src/index/index.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-metric-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** n random rows of `dim` values in [-1, 1], scaled to norm `norm` (null: left as drawn). */
function input(n: number, dim: number, seed: number, metric: BundleMetric | undefined, norm: number | null): BuildInput & { rows: number[][] } {
  const rnd = seededRandom(seed);
  const rows: number[][] = [];
  const embeddings = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const v = Array.from({ length: dim }, () => rnd() * 2 - 1);
    const s = norm === null ? 1 : norm / Math.hypot(...v);
    const row = Array.from(Float32Array.from(v.map((x) => x * s)));
    rows.push(row);
    embeddings.set(row, i * dim);
  }
  return {
    rows,
    embeddings,
    dim,
    ...(metric === undefined ? {} : { metric }),
    ids: rows.map((_, i) => `r${i}`),
    labels: null,
    labelNames: null,
    model: { name: 'test', version: '1', sha256: 'c'.repeat(64) },
    source: { test: true },
    k: 5,
    densityWeight: 0.5,
  };
}

const DISTANCE: Record<BundleMetric, (a: readonly number[], b: readonly number[]) => number> = {
  cosine: (a, b) => 1 - a.reduce((s, x, i) => s + x * (b[i] as number), 0) / (Math.hypot(...a) * Math.hypot(...b)),
  l2: (a, b) => a.reduce((s, x, i) => s + (x - (b[i] as number)) ** 2, 0),
  ip: (a, b) => 1 - a.reduce((s, x, i) => s + x * (b[i] as number), 0),
};

for (const [metric, norm, threads] of [
  ['l2', null, 1],
  ['l2', null, 2],
  ['ip', 0.9, 1],
] as const) {
  test(`a ${metric} bundle (${threads} build thread(s)) stores its metric and searches by it, as brute force does`, async () => {
    const dir = join(root, `${metric}-${threads}`);
    const inp = input(600, 8, 3, metric, norm);
    const res = await buildBundle(dir, inp, { threads });
    assert.equal(res.manifest.metric, metric);
    assert.equal((JSON.parse(readFileSync(join(res.dir, 'manifest.json'), 'utf8')) as { metric: string }).metric, metric);
    const snap = await loadCurrentBundle(dir, { efSearch: 200, expectMetric: metric });
    const rnd = seededRandom(7);
    let agree = 0;
    for (let t = 0; t < 50; t++) {
      const q = Array.from({ length: 8 }, () => (rnd() * 2 - 1) * 0.3);
      const got = snap.search(q, 5);
      const brute = inp.rows.map((r, i) => ({ i, d: DISTANCE[metric](q, r) })).sort((a, b) => a.d - b.d);
      // The nearest distance is brute force's (cosine would give a different number for these rows).
      assert.ok(Math.abs((got.distances[0] as number) - Math.max(0, (brute[0] as { d: number }).d)) < 1e-4, `${got.distances[0]} vs ${brute[0]?.d}`);
      if (got.ids[0] === `r${brute[0]?.i}`) agree++;
    }
    assert.ok(agree >= 48, `nearest agrees with brute force on ${agree}/50`);
    // The leave-one-out radii are in the metric's units too: l2 distances of these rows exceed cosine's [0, 2].
    if (metric === 'l2') assert.ok((res.manifest.reference_stats.loo_mean_knn_quantiles.at(-1) as number) > 0);
  });
}

test('a worker refuses a bundle whose metric differs from its encoder, naming both', async () => {
  const dir = join(root, 'refuse');
  const res = await buildBundle(dir, input(200, 8, 4, 'l2', null));
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50, expectMetric: 'cosine' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'QUALM_BUNDLE_INVALID');
    assert.match(e.message, /uses the l2 metric, but the encoder's manifest says cosine/);
    return true;
  });
});

test('a bundle without a metric in its manifest (written before the field) reads as cosine', async () => {
  const dir = join(root, 'old');
  const res = await buildBundle(dir, input(200, 8, 5, undefined, 1));
  assert.equal(res.manifest.metric, 'cosine');
  const file = join(res.dir, 'manifest.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete doc.metric;
  writeFileSync(file, JSON.stringify(doc));
  const snap = await loadBundle(dir, res.version, { efSearch: 50, expectMetric: 'cosine' });
  assert.equal(snap.manifest.metric, 'cosine');
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50, expectMetric: 'ip' }), /uses the cosine metric/);
});

test('an incremental build keeps its bundle metric and refuses another', async () => {
  const dir = join(root, 'inc');
  const base = await buildBundle(dir, input(200, 8, 6, 'l2', null));
  const more = input(50, 8, 8, 'cosine', 1);
  await assert.rejects(
    buildBundle(dir, { ...more, ids: more.ids.map((id) => `new-${id}`), from: { dir, version: base.version } }),
    /cannot extend bundle .*: it uses the l2 metric, these references cosine/,
  );
  const ok = await buildBundle(dir, { ...more, metric: 'l2', ids: more.ids.map((id) => `new-${id}`), from: { dir, version: base.version } });
  assert.equal(ok.manifest.metric, 'l2');
  assert.equal(ok.manifest.count, 250);
});

test('ip refuses rows longer than 1, whose distances would be negative', async () => {
  await assert.rejects(buildBundle(join(root, 'ip-long'), input(100, 8, 9, 'ip', 1.5)), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'QUALM_DATASET_INVALID');
    assert.match(e.message, /reference row 0 has L2 norm 1\.5000: the ip metric .* needs rows of norm at most 1/);
    return true;
  });
});
