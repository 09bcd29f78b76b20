import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binnedAccuracy, fprAtTpr, oodMetrics, riskCoverage } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

/** Every order of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  return out;
}

/** Brute force: average, over every order consistent with the score (ties in any order), of the plain risk curve. */
function bruteRisk(u: readonly number[], loss: readonly number[]): number[] {
  const n = u.length;
  const sum = new Array<number>(n).fill(0);
  let orders = 0;
  for (const p of permutations(n)) {
    let sorted = true;
    for (let i = 1; i < n; i++) if ((u[p[i - 1] as number] as number) > (u[p[i] as number] as number)) sorted = false;
    if (!sorted) continue;
    orders++;
    let cum = 0;
    p.forEach((r, i) => {
      cum += loss[r] as number;
      sum[i] = (sum[i] as number) + cum / (i + 1);
    });
  }
  return sum.map((s) => s / orders);
}

test('the risk-coverage curve is the tie-order average of the plain curve; AURC its mean', () => {
  const rnd = seededRandom(11);
  for (let t = 0; t < 40; t++) {
    const n = 1 + Math.floor(rnd() * 7);
    const u = Array.from({ length: n }, () => Math.floor(rnd() * (t % 2 === 0 ? 3 : 100)));
    const loss = Array.from({ length: n }, () => (t % 3 === 0 ? rnd() : rnd() < 0.4 ? 1 : 0));
    const rc = riskCoverage(u, loss);
    const brute = bruteRisk(u, loss);
    brute.forEach((r, i) => assert.ok(Math.abs((rc.risk[i] as number) - r) < 1e-12, `case ${t} position ${i}`));
    const mean = brute.reduce((a, b) => a + b, 0) / n;
    assert.ok(Math.abs(rc.aurc - mean) < 1e-12);
    assert.equal(rc.coverage[n - 1], 1);
  }
});

test('AURC: a perfect ranking beats a constant score, which gets the overall error rate', () => {
  const err = [0, 0, 0, 1, 0, 1, 0, 0, 1, 0];
  const constant = riskCoverage(new Array<number>(10).fill(0.5), err);
  assert.ok(Math.abs(constant.aurc - 0.3) < 1e-12);
  const perfect = riskCoverage(err, err);
  const worst = riskCoverage(err.map((e) => -e), err);
  assert.ok(perfect.aurc < constant.aurc && constant.aurc < worst.aurc);
});

test('accuracy per decile: bins of equal size from most to least certain; tied scores share their accuracy', () => {
  const rnd = seededRandom(5);
  for (let t = 0; t < 20; t++) {
    const n = 10 + Math.floor(rnd() * 200);
    const u = Array.from({ length: n }, () => rnd());
    const correct = u.map((v) => (rnd() > v ? 1 : 0));
    const order = u.map((_, i) => i).sort((a, b) => (u[a] as number) - (u[b] as number));
    const got = binnedAccuracy(u, correct, 10);
    for (let b = 0; b < 10; b++) {
      const members = order.slice(Math.floor((b * n) / 10), Math.floor(((b + 1) * n) / 10));
      const acc = members.reduce((s, i) => s + (correct[i] as number), 0) / members.length;
      assert.ok(Math.abs((got[b] as number) - acc) < 1e-12, `case ${t} bin ${b}`);
    }
  }
  const flat = binnedAccuracy(new Array<number>(20).fill(1), [...new Array<number>(15).fill(1), 0, 0, 0, 0, 0]);
  flat.forEach((a) => assert.ok(Math.abs(a - 0.75) < 1e-12));
});

test('FPR at 95% TPR matches a scan over every threshold', () => {
  const rnd = seededRandom(9);
  for (let t = 0; t < 50; t++) {
    const coarse = t % 2 === 0 ? 10 : 1000;
    const neg = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * coarse));
    const pos = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * coarse * 1.3));
    let best = Infinity;
    for (const th of [...neg, ...pos]) {
      const tpr = pos.filter((v) => v >= th).length / pos.length;
      if (tpr >= 0.95) best = Math.min(best, neg.filter((v) => v >= th).length / neg.length);
    }
    assert.equal(fprAtTpr(neg, pos, 0.95), best, `case ${t}`);
  }
  const m = oodMetrics([0.1, 0.2, 0.3], [0.8, 0.9, 1]);
  assert.equal(m.auroc, 1);
  assert.equal(m.fpr95, 0);
});
