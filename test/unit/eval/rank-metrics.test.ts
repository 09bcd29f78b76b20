import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auroc, averageRanks, kendallTauB, spearman } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

/** O(n^2) tau-b straight from the definition. */
function bruteTauB(x: readonly number[], y: readonly number[]): number {
  let c = 0;
  let d = 0;
  let tx = 0;
  let ty = 0;
  const n = x.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const sx = Math.sign((x[j] as number) - (x[i] as number));
      const sy = Math.sign((y[j] as number) - (y[i] as number));
      if (sx === 0) tx++;
      if (sy === 0) ty++;
      if (sx * sy > 0) c++;
      if (sx * sy < 0) d++;
    }
  }
  const n0 = (n * (n - 1)) / 2;
  return (c - d) / Math.sqrt((n0 - tx) * (n0 - ty));
}

/** Ranks by counting: rank = #smaller + (#equal + 1) / 2. */
function bruteRanks(x: readonly number[]): number[] {
  return x.map((v) => x.filter((u) => u < v).length + (x.filter((u) => u === v).length + 1) / 2);
}

function brutePearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += ((a[i] as number) - ma) * ((b[i] as number) - mb);
    saa += ((a[i] as number) - ma) ** 2;
    sbb += ((b[i] as number) - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** P(pos > neg) + P(pos = neg) / 2 over all pairs. */
function bruteAuroc(score: readonly number[], pos: readonly number[]): number {
  let s = 0;
  let pairs = 0;
  for (let i = 0; i < score.length; i++) {
    if (pos[i] !== 1) continue;
    for (let j = 0; j < score.length; j++) {
      if (pos[j] === 1) continue;
      pairs++;
      const a = score[i] as number;
      const b = score[j] as number;
      s += a > b ? 1 : a === b ? 0.5 : 0;
    }
  }
  return s / pairs;
}

function dataSets(): { name: string; x: number[]; y: number[] }[] {
  const rnd = seededRandom(7);
  const out: { name: string; x: number[]; y: number[] }[] = [];
  for (let t = 0; t < 20; t++) {
    const n = 2 + Math.floor(rnd() * 300);
    const x = Array.from({ length: n }, () => rnd());
    // Continuous, coarse (many ties) and 0/1 (massive ties, like the error) y; correlated with x half the time.
    const noise = t % 2 === 0 ? 0.3 : 5;
    const yc = x.map((v) => v + noise * (rnd() - 0.5));
    out.push({ name: `continuous #${t}`, x, y: yc });
    out.push({ name: `coarse #${t}`, x: x.map((v) => Math.round(v * 5)), y: yc.map((v) => Math.round(v * 3)) });
    out.push({ name: `binary y #${t}`, x, y: yc.map((v) => (v > 0.6 ? 1 : 0)) });
    out.push({ name: `binary both #${t}`, x: x.map((v) => (v > 0.5 ? 1 : 0)), y: yc.map((v) => (v > 0.6 ? 1 : 0)) });
  }
  return out;
}

const close = (a: number, b: number, what: string): void => {
  if (Number.isNaN(b)) assert.ok(Number.isNaN(a), `${what}: expected NaN, got ${a}`);
  else assert.ok(Math.abs(a - b) < 1e-10, `${what}: ${a} != ${b}`);
};

test('average ranks match counting ranks, ties sharing their mean rank', () => {
  for (const { name, x } of dataSets()) assert.deepEqual(Array.from(averageRanks(x)), bruteRanks(x), name);
  assert.deepEqual(Array.from(averageRanks([3, 1, 3, 2, 3])), [4, 1, 4, 2, 4]);
});

test('Kendall tau-b matches the O(n^2) definition on random and tied data', () => {
  for (const { name, x, y } of dataSets()) close(kendallTauB(x, y), bruteTauB(x, y), name);
  close(kendallTauB([1, 2, 3], [1, 2, 3]), 1, 'identical');
  close(kendallTauB([1, 2, 3], [3, 2, 1]), -1, 'reversed');
  assert.ok(Number.isNaN(kendallTauB([1, 1, 1], [1, 2, 3])), 'a constant series has no tau');
  assert.ok(Number.isNaN(kendallTauB([1], [1])));
});

test('Kendall tau-b is O(n log n): 200k points with massive ties in well under a second', () => {
  const rnd = seededRandom(3);
  const n = 200_000;
  const x = Float64Array.from({ length: n }, () => rnd());
  const y = Float64Array.from(x, (v) => (v + rnd() > 1.2 ? 1 : 0));
  const t0 = performance.now();
  const tau = kendallTauB(x, y);
  assert.ok(performance.now() - t0 < 2000);
  assert.ok(tau > 0.3 && tau < 0.7, String(tau));
});

test('Spearman rho is the Pearson correlation of average ranks', () => {
  for (const { name, x, y } of dataSets()) {
    if (new Set(x).size < 2 || new Set(y).size < 2) continue;
    close(spearman(x, y), brutePearson(bruteRanks(x), bruteRanks(y)), name);
  }
  close(spearman([1, 2, 3, 4], [10, 20, 30, 1000]), 1, 'monotone');
  assert.ok(Number.isNaN(spearman([1, 1], [1, 2])));
});

test('AUROC matches the all-pairs definition with ties counting one half', () => {
  for (const { name, x, y } of dataSets()) {
    if (!y.includes(1) || !y.includes(0)) continue;
    close(auroc(x, y), bruteAuroc(x, y), name);
  }
  close(auroc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]), 1, 'perfect');
  close(auroc([5, 5, 5, 5], [0, 1, 0, 1]), 0.5, 'constant');
  close(auroc([0.1, 0.9], [true, false]), 0, 'booleans');
  assert.ok(Number.isNaN(auroc([1, 2], [0, 0])));
});
