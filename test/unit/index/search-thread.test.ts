import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { normalizeRows } from '../../../src/encoder/index.js';
import { SearchThread, buildBundle, loadBundle, type BuildInput, type IndexSnapshot } from '../../../src/index/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-search-thread-'));
after(() => rmSync(root, { recursive: true, force: true }));
const DIM = 12;

function vectors(n: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const x = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) for (let d = 0; d < DIM; d++) x[i * DIM + d] = (d === i % 4 ? 2 : 0) + gaussian(rnd);
  return normalizeRows(x, DIM);
}

function input(n: number): BuildInput {
  return {
    embeddings: vectors(n, 1),
    dim: DIM,
    ids: Array.from({ length: n }, (_, i) => `r${i}`),
    labels: Array.from({ length: n }, (_, i) => i % 4),
    labelNames: ['a', 'b', 'c', 'd'],
    model: { name: 't', version: '1', sha256: 'c'.repeat(64) },
    source: {},
    k: 6,
    densityWeight: 0.5,
  };
}

async function bundle(name: string, shards: number): Promise<IndexSnapshot> {
  const dir = join(root, name);
  const res = await buildBundle(dir, { ...input(400), hnsw: { m: 16, efConstruction: 100, randomSeed: 7, shards } }, { threads: 1, version: name });
  return loadBundle(dir, res.manifest.version, { efSearch: 50 });
}

const queries = (n: number): Float32Array[] => {
  const q = vectors(n, 9);
  return Array.from({ length: n }, (_, i) => q.slice(i * DIM, (i + 1) * DIM));
};

for (const shards of [1, 3]) {
  test(`the search thread finds what snapshot.search finds (${shards} shard${shards > 1 ? 's' : ''}), nulls kept in place`, async () => {
    const snap = await bundle(`s${shards}`, shards);
    const thread = new SearchThread();
    try {
      assert.equal(thread.serves(snap), false);
      await thread.open(snap);
      assert.equal(thread.serves(snap), true);
      const qs: (Float32Array | null)[] = queries(40);
      qs.splice(5, 0, null);
      const got = await thread.search(snap, qs);
      assert.equal(got.length, qs.length);
      assert.equal(got[5], null);
      qs.forEach((q, i) => {
        if (q === null) return;
        const want = snap.search(q);
        const have = got[i];
        assert.ok(have !== null && have !== undefined);
        assert.deepEqual(have.ids, want.ids, `query ${i}`);
        assert.deepEqual(have.labels, want.labels);
        assert.deepEqual(have.radii, want.radii);
        assert.deepEqual(have.kthRadii, want.kthRadii);
        have.distances.forEach((d, j) => assert.ok(Math.abs(d - (want.distances[j] as number)) < 1e-6));
      });
    } finally {
      await thread.close();
    }
  });
}

test('a snapshot the thread has not opened, or a closed thread, is searched on the calling thread', async () => {
  const a = await bundle('fa', 1);
  const b = await bundle('fb', 1);
  const thread = new SearchThread();
  await thread.open(a);
  const q = queries(3);
  const viaMain = await thread.search(b, q);
  assert.deepEqual(viaMain.map((n) => n?.ids), q.map((x) => b.search(x).ids));
  thread.retain(b);
  assert.equal(thread.serves(a), false, 'retain drops the other versions');
  await thread.close();
  const afterClose = await thread.search(a, q);
  assert.deepEqual(afterClose.map((n) => n?.ids), q.map((x) => a.search(x).ids));
});

test('a shard file the thread cannot read rejects open with the version named', async () => {
  const snap = await bundle('gone', 1);
  rmSync(snap.shardPaths[0] as string);
  const thread = new SearchThread();
  try {
    await assert.rejects(thread.open(snap), /cannot open bundle gone/);
    assert.equal(thread.serves(snap), false);
  } finally {
    await thread.close();
  }
});
