import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { gaussian } from '../../../src/util/random.js';
import { normalizeRows } from '../../../src/encoder/index.js';
import { buildBundle, loadCurrentBundle } from '../../../src/index/index.js';
import { percentileRank, referenceScorer, scoreNeighbors } from '../../../src/scoring/index.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-calib-'));
after(() => rmSync(root, { recursive: true, force: true }));

const DIM = 12;
const CLASSES = 4;

/** Four overlapping labelled clusters on the sphere; `shift` moves the whole cloud away. */
function sample(n: number, rnd: () => number, shift = 0): { x: Float32Array; y: number[] } {
  const x = new Float32Array(n * DIM);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * CLASSES);
    y.push(c);
    for (let d = 0; d < DIM; d++) x[i * DIM + d] = (d === c ? 2 : 0) + (d === DIM - 1 ? shift : 0) + gaussian(rnd) * 0.6;
  }
  return { x: normalizeRows(x, DIM), y };
}

test('calibrated uncertainty: a threshold t flags about 1 - t of fresh in-distribution data, and shifted data far more', async () => {
  const rnd = seededRandom(42);
  const refs = sample(3000, rnd);
  const opts = { densityWeight: 0.6, numLabels: CLASSES };
  const res = await buildBundle(root, {
    embeddings: refs.x,
    dim: DIM,
    ids: refs.y.map((_, i) => `r${i}`),
    labels: refs.y,
    labelNames: ['a', 'b', 'c', 'd'],
    model: { name: 't', version: '1', sha256: 'd'.repeat(64) },
    source: {},
    k: 15,
    densityWeight: opts.densityWeight,
    referenceScore: referenceScorer(opts),
  });
  const q = res.manifest.reference_stats.loo_score_quantiles;
  assert.ok(q !== null && q.length === 1001);
  assert.equal(res.manifest.scoring.density_weight, 0.6);

  const snap = await loadCurrentBundle(root, { efSearch: 100 });
  const rate = (set: { x: Float32Array }, n: number, t: number): number => {
    let flagged = 0;
    for (let i = 0; i < n; i++) {
      const s = scoreNeighbors(snap.search(set.x.subarray(i * DIM, (i + 1) * DIM)), snap.stats, opts);
      assert.equal(s.uncertainty, percentileRank(s.rawScore, q));
      if (s.uncertainty >= t) flagged++;
    }
    return flagged / n;
  };
  const fresh = sample(2000, rnd);
  for (const t of [0.8, 0.9, 0.95]) {
    const r = rate(fresh, 2000, t);
    assert.ok(Math.abs(r - (1 - t)) < 0.03, `threshold ${t}: flagged ${r}, expected about ${1 - t}`);
  }
  const shifted = sample(1000, rnd, 6);
  const shiftedRate = rate(shifted, 1000, 0.9);
  assert.ok(shiftedRate > 0.8, `a shifted cloud is mostly flagged (got ${shiftedRate})`);
});
