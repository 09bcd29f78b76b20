import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { buildBundle, loadBundle, loadCurrentBundle, movePointer, pruneBundles, readPointer, type BuildInput } from '../../../src/index/index.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-bundle-'));
after(() => rmSync(root, { recursive: true, force: true }));

function randomInput(n: number, dim: number, seed: number): BuildInput & { vectors: number[][] } {
  const rnd = seededRandom(seed);
  const vectors: number[][] = [];
  const embeddings = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const v = Array.from({ length: dim }, () => rnd() * 2 - 1);
    const norm = Math.hypot(...v);
    const u = v.map((x) => x / norm);
    vectors.push(Array.from(Float32Array.from(u)));
    embeddings.set(u, i * dim);
  }
  return {
    vectors,
    embeddings,
    dim,
    ids: vectors.map((_, i) => `ref-${i}`),
    labels: vectors.map((v) => ((v[0] as number) > 0 ? 1 : 0)),
    labelNames: ['neg', 'pos'],
    model: { name: 'test', version: '1', sha256: 'a'.repeat(64) },
    source: { test: true },
    k: 5,
    densityWeight: 0.5,
  };
}

const cos = (a: number[], b: number[]): number => 1 - a.reduce((s, x, i) => s + x * (b[i] as number), 0);

test('build writes a verified bundle whose searches agree with brute force', async () => {
  const dir = join(root, 'a');
  const input = randomInput(1500, 16, 1);
  const phases = new Set<string>();
  const res = await buildBundle(dir, input, { onProgress: (p) => phases.add(p) });
  assert.deepEqual([...phases].sort(), ['insert', 'leave-one-out', 'write']);
  assert.equal(await readPointer(dir), res.version);
  const m = res.manifest;
  assert.equal(m.count, 1500);
  assert.equal(m.metric, 'cosine');
  assert.equal(m.reference_stats.loo_mean_knn_quantiles.length, 1001);
  assert.deepEqual(Object.keys(m.files).sort(), ['ids.json', 'index.hnsw', 'labels.json', 'loo-kth.f32', 'loo-radii.f32']);

  const snap = await loadCurrentBundle(dir, { efSearch: 200, expectModelSha256: 'a'.repeat(64) });
  assert.equal(snap.version, res.version);
  const rnd = seededRandom(99);
  let hits = 0;
  for (let t = 0; t < 100; t++) {
    const q = Array.from({ length: 16 }, () => rnd() * 2 - 1);
    const n = Math.hypot(...q);
    const z = q.map((x) => x / n);
    const got = snap.search(z, 5);
    const brute = input.vectors.map((v, i) => [i, cos(v, z)] as const).sort((a, b) => a[1] - b[1]).slice(0, 5);
    hits += got.ids.filter((id) => brute.some(([i]) => `ref-${i}` === id)).length;
    for (let j = 1; j < got.distances.length; j++) assert.ok((got.distances[j] as number) >= (got.distances[j - 1] as number));
    assert.ok(Math.abs((got.distances[0] as number) - (brute[0]?.[1] ?? 0)) < 1e-4);
  }
  assert.ok(hits / 500 >= 0.98, `recall@5 ${hits / 500}`);

  // The leave-one-out median matches a brute-force computation.
  const looSorted = input.vectors.map((v, i) => input.vectors.map((w, j) => (j === i ? Infinity : cos(v, w))).sort((a, b) => a - b).slice(0, 5));
  const loo = looSorted.map((d) => d.reduce((a, b) => a + b, 0) / 5);
  // Each neighbour carries its own leave-one-out mean kNN distance (its radius) and k-th distance (its k-NN radius).
  const probe = snap.search(input.vectors[7] as number[], 5);
  assert.ok(probe.kthRadii !== null);
  probe.ids.forEach((id, j) => {
    const row = Number(id.slice(4));
    assert.ok(Math.abs((probe.radii[j] as number) - (loo[row] as number)) < 1e-4);
    assert.ok(Math.abs((probe.kthRadii?.[j] as number) - (looSorted[row]?.[4] as number)) < 1e-4);
  });
  loo.sort((a, b) => a - b);
  const median = ((loo[749] as number) + (loo[750] as number)) / 2;
  assert.ok(Math.abs((m.reference_stats.loo_mean_knn_quantiles[500] as number) - median) < 2e-3);
});

test('a tampered, truncated or mismatched bundle is refused with QUALM_BUNDLE_INVALID', async () => {
  const dir = join(root, 'b');
  const res = await buildBundle(dir, randomInput(300, 8, 2));
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50, expectModelSha256: 'b'.repeat(64) }), /QUALM|built with model sha256/);

  const ids = join(res.dir, 'ids.json');
  const original = readFileSync(ids, 'utf8');
  writeFileSync(ids, original.replace('ref-1"', 'ref-X"'));
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'QUALM_BUNDLE_INVALID');
    assert.match(err.message, /ids\.json checksum mismatch/);
    return true;
  });
  writeFileSync(ids, original);
  await loadBundle(dir, res.version, { efSearch: 50 });

  const manifestPath = join(res.dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { count: number };
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, count: 'many' }));
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50 }), /manifest\.json is invalid: count/);
});

test('a second build leaves the first intact and moves the pointer; no temp dirs remain', async () => {
  const dir = join(root, 'c');
  const first = await buildBundle(dir, randomInput(200, 8, 3), { version: 'v1' });
  const second = await buildBundle(dir, randomInput(200, 8, 4), { version: 'v2' });
  assert.equal(await readPointer(dir), second.version);
  await loadBundle(dir, first.version, { efSearch: 50 });
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v1', 'v2']);
});

test('a cancelled build writes nothing and leaves the pointer alone', async () => {
  const dir = join(root, 'd');
  await buildBundle(dir, randomInput(200, 8, 5), { version: 'v1' });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(buildBundle(dir, randomInput(2000, 8, 6), { version: 'v2', signal: ac.signal }), /cancelled/);
  assert.equal(await readPointer(dir), 'v1');
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v1']);
});

test('no pointer: a clear QUALM_BUNDLE_MISSING', async () => {
  await assert.rejects(loadCurrentBundle(join(root, 'none'), { efSearch: 50 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'QUALM_BUNDLE_MISSING');
    assert.match(err.message, /run qualm build-index first/);
    return true;
  });
});

test('an unknown bundle format version is refused with a clear message', async () => {
  const dir = join(root, 'e');
  const res = await buildBundle(dir, randomInput(100, 8, 7));
  const manifestPath = join(res.dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, format_version: 99 }));
  await assert.rejects(loadBundle(dir, res.version, { efSearch: 50 }), /bundle format version 99 is not supported: this qualm reads formats 1, 2/);
});

test('retention keeps the newest N versions and always the current one', async () => {
  const dir = join(root, 'f');
  for (const v of ['v1', 'v2', 'v3', 'v4']) await buildBundle(dir, randomInput(60, 8, 8), { version: v });
  await movePointer(dir, 'v1');
  const removed = await pruneBundles(dir, 2);
  assert.deepEqual(removed.sort(), ['v2']);
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v1', 'v3', 'v4']);
  await movePointer(dir, 'v4');
  assert.deepEqual(await pruneBundles(dir, 1), ['v3', 'v1'], 'newest first: v3, then v1');
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v4']);
  await assert.rejects(pruneBundles(dir, 0), RangeError);
});
