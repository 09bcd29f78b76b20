import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auroc, kendallTauB, pairedBootstrap, riskCoverage, unweightedMetrics } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

/** A score with many ties (rounded to one decimal) and errors that depend on it. */
function data(n: number, seed: number): { u: Float64Array; v: Float64Array; e: Float64Array } {
  const rnd = seededRandom(seed);
  const u = Float64Array.from({ length: n }, () => Math.round(rnd() * 10) / 10);
  const e = Float64Array.from(u, (x) => (rnd() < 0.1 + 0.6 * x ? 1 : 0));
  const v = Float64Array.from({ length: n }, () => rnd());
  return { u, v, e };
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('on the full set the weighted metrics are rank-metrics.ts and risk-coverage.ts, ties included', () => {
  for (const seed of [1, 2, 3]) {
    const { u, v, e } = data(300, seed);
    for (const s of [u, v]) {
      const m = unweightedMetrics(s, e);
      close(m.auroc, auroc(s, e), 'auroc');
      close(m.kendall_tau, kendallTauB(s, e), 'tau');
      close(m.aurc, riskCoverage(s, e).aurc, 'aurc');
    }
  }
});

test('one resample equals the metrics of the drawn points written out, copies and all', () => {
  const { u, v, e } = data(200, 7);
  const seed = 11;
  const b = pairedBootstrap(u, v, e, { resamples: 1, seed });
  // The same draws as the bootstrap: n uniform indices from seededRandom(seed).
  const rnd = seededRandom(seed);
  const idx = Array.from({ length: 200 }, () => Math.floor(rnd() * 200));
  const pick = (x: Float64Array): Float64Array => Float64Array.from(idx, (i) => x[i] as number);
  const [du, dv, de] = [pick(u), pick(v), pick(e)];
  close(b.auroc.ci95[0], auroc(du, de) - auroc(dv, de), 'auroc');
  close(b.kendall_tau.ci95[0], kendallTauB(du, de) - kendallTauB(dv, de), 'tau');
  close(b.aurc.ci95[0], riskCoverage(du, de).aurc - riskCoverage(dv, de).aurc, 'aurc');
  // The point estimate is the full set's.
  close(b.auroc.delta, auroc(u, e) - auroc(v, e), 'delta');
});

test('a score against itself differs by exactly 0; an informative one against noise is ahead with the whole interval', () => {
  const { u, v, e } = data(1000, 5);
  const same = pairedBootstrap(u, u, e, { resamples: 200 });
  for (const m of ['auroc', 'aurc', 'kendall_tau'] as const) assert.deepEqual([same[m].delta, ...same[m].ci95], [0, 0, 0]);
  const better = pairedBootstrap(u, v, e, { resamples: 300 });
  assert.ok(better.auroc.ci95[0] > 0 && better.auroc.ci95[0] <= better.auroc.delta && better.auroc.delta <= better.auroc.ci95[1], JSON.stringify(better.auroc));
  assert.ok(better.aurc.ci95[1] < 0, JSON.stringify(better.aurc));
  assert.ok(better.kendall_tau.ci95[0] > 0, JSON.stringify(better.kendall_tau));
  // Seeded: the same call gives the same interval.
  assert.deepEqual(pairedBootstrap(u, v, e, { resamples: 300 }), better);
});

test('mismatched lengths, no points and a bad resample count are refused', () => {
  assert.throws(() => pairedBootstrap([0.1, 0.2], [0.1], [0, 1]), /2 and 1 scores for 2 errors/);
  assert.throws(() => pairedBootstrap([], [], []), /at least one point/);
  assert.throws(() => pairedBootstrap([0.1], [0.2], [1], { resamples: 0 }), /positive integer/);
});
