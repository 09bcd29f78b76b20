import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { normalizeRows } from '../../../src/encoder/index.js';
import { BundleRefresher, buildBundle, loadCurrentBundle, movePointer, type RefreshOutcome } from '../../../src/index/index.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-refresh-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function build(version: string, seed: number, sha = 'e'.repeat(64)): Promise<void> {
  const rnd = seededRandom(seed);
  const n = 200;
  const emb = normalizeRows(Float32Array.from({ length: n * 8 }, () => rnd() - 0.5), 8);
  await buildBundle(root, { embeddings: emb, dim: 8, ids: Array.from({ length: n }, (_, i) => `${version}-${i}`), labels: null, labelNames: null, model: { name: 'm', version: '1', sha256: sha }, source: {}, k: 5, densityWeight: 1 }, { version });
}

test('swaps to a new version, refuses a bad one once, keeps serving the last good one', async () => {
  await build('a', 1);
  const load = { efSearch: 50, expectModelSha256: 'e'.repeat(64) };
  const seen: RefreshOutcome[] = [];
  const r = new BundleRefresher(root, await loadCurrentBundle(root, load), { intervalMs: 0, load, onOutcome: (o) => seen.push(o) });
  assert.equal((await r.check()).kind, 'unchanged');

  await build('b', 2);
  const [x, y] = await Promise.all([r.check(), r.check()]);
  assert.equal(x, y, 'concurrent checks share one load');
  assert.equal(x.kind, 'swapped');
  assert.equal(r.current().version, 'b');
  assert.ok(r.current().search([1, 0, 0, 0, 0, 0, 0, 0]).ids.every((id) => id.startsWith('b-')));

  await build('c', 3, 'f'.repeat(64));
  const refused = await r.check();
  assert.equal(refused.kind, 'refused');
  assert.equal(r.current().version, 'b');
  assert.equal((await r.check()).kind, 'unchanged', 'a refused version is not loaded again');
  assert.deepEqual(seen.map((o) => o.kind), ['swapped', 'refused']);

  writeFileSync(join(root, 'CURRENT'), 'not a version!\n');
  assert.equal((await r.check()).kind, 'error');
  await movePointer(root, 'b');
  assert.equal((await r.check()).kind, 'unchanged');
  await r.stop();
  await r.stop();
});
