import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cholesky, fitGaussian, forwardSubstitute, invertLower, mahalanobis, packLower } from '../../../src/scoring/index.js';
import { gaussian as normal, seededRandom } from '../../../src/util/random.js';

/** Gauss-Jordan inverse of a small dense matrix (the brute-force reference). */
function inverse(a: number[][]): number[][] {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pv = m[c]![c]!;
    for (let k = 0; k < 2 * n; k++) m[c]![k]! /= pv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]!;
      for (let k = 0; k < 2 * n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row) => row.slice(n));
}

function quad(p: number[][], v: number[]): number {
  let s = 0;
  for (let a = 0; a < v.length; a++) for (let b = 0; b < v.length; b++) s += v[a]! * p[a]![b]! * v[b]!;
  return s;
}

function sample(seed: number, n: number, dim: number, classes: number): { x: Float32Array; labels: Int32Array } {
  const rnd = seededRandom(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => 2 * normal(rnd)));
  const mix = Array.from({ length: dim }, () => Array.from({ length: dim }, () => normal(rnd) * 0.5));
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    labels[i] = c;
    const e = Array.from({ length: dim }, () => normal(rnd));
    for (let d = 0; d < dim; d++) {
      let v = centres[c]![d]!;
      for (let k = 0; k < dim; k++) v += mix[d]![k]! * e[k]!;
      x[i * dim + d] = v;
    }
  }
  return { x, labels };
}

test('cholesky and forward substitution invert a random positive-definite matrix', () => {
  const rnd = seededRandom(5);
  const dim = 7;
  const b = Array.from({ length: dim }, () => Array.from({ length: dim }, () => normal(rnd)));
  const a = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) a[i * dim + j] = b[i]!.reduce((s, v, k) => s + v * b[j]![k]!, 0) + (i === j ? 0.5 : 0);
  const l = cholesky(a, dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += l[i * dim + k]! * l[j * dim + k]!;
      assert.ok(Math.abs(s - a[i * dim + j]!) < 1e-9, `L Lt differs at ${i},${j}`);
      if (j > i) assert.equal(l[i * dim + j], 0);
    }
  }
  const v = Array.from({ length: dim }, () => normal(rnd));
  const y = forwardSubstitute(l, dim, v);
  for (let i = 0; i < dim; i++) assert.ok(Math.abs(l.subarray(i * dim, i * dim + i + 1).reduce((s, li, k) => s + li * y[k]!, 0) - v[i]!) < 1e-9);
  assert.throws(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2), /not positive definite/);
});

test('fitGaussian + mahalanobis match the textbook formulas computed with an explicit inverse', () => {
  const dim = 5;
  const classes = 3;
  const { x, labels } = sample(9, 600, dim, classes);
  const g = fitGaussian(x, dim, labels, classes, { ridge: 0 });
  const n = labels.length;
  const rows = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * dim, (i + 1) * dim)));
  const means = Array.from({ length: classes }, (_, c) => {
    const members = rows.filter((_, i) => labels[i] === c);
    return Array.from({ length: dim }, (_, d) => members.reduce((s, r) => s + r[d]!, 0) / members.length);
  });
  const gmean = Array.from({ length: dim }, (_, d) => rows.reduce((s, r) => s + r[d]!, 0) / n);
  const cov = (centre: (i: number) => number[]): number[][] =>
    Array.from({ length: dim }, (_, a) => Array.from({ length: dim }, (_, b) => rows.reduce((s, r, i) => s + (r[a]! - centre(i)[a]!) * (r[b]! - centre(i)[b]!), 0) / n));
  const pw = inverse(cov((i) => means[labels[i]!]!));
  const pg = inverse(cov(() => gmean));
  const rnd = seededRandom(10);
  for (let t = 0; t < 50; t++) {
    const z = Array.from({ length: dim }, () => 3 * normal(rnd));
    const got = mahalanobis(g, z);
    const dists = means.map((m) => quad(pw, z.map((v, d) => v - m[d]!)));
    const best = Math.min(...dists);
    const global = quad(pg, z.map((v, d) => v - gmean[d]!));
    assert.ok(Math.abs(got.classDistance - best) < 1e-6 * Math.max(1, best), `class ${got.classDistance} vs ${best}`);
    assert.equal(got.nearestClass, dists.indexOf(best));
    assert.ok(Math.abs(got.globalDistance - global) < 1e-6 * Math.max(1, global));
    assert.ok(Math.abs(got.relative - (best - global)) < 1e-6 * Math.max(1, Math.abs(best), global));
    assert.equal(got.classDistances.length, classes);
    got.classDistances.forEach((d, c) => assert.ok(Math.abs(d - dists[c]!) < 1e-6 * Math.max(1, dists[c]!), `class ${c}: ${d} vs ${dists[c]}`));
  }
});

test('fitGaussian: unlabelled rows are left out, and bad input is refused with a reason', () => {
  const dim = 3;
  const { x, labels } = sample(4, 300, dim, 2);
  const withUnknown = Int32Array.from(labels, (l, i) => (i % 7 === 0 ? -1 : l));
  const kept = Array.from(withUnknown.keys()).filter((i) => withUnknown[i]! >= 0);
  const xs = new Float32Array(kept.length * dim);
  kept.forEach((r, i) => xs.set(x.subarray(r * dim, (r + 1) * dim), i * dim));
  const a = fitGaussian(x, dim, withUnknown, 2);
  const b = fitGaussian(xs, dim, Int32Array.from(kept, (r) => withUnknown[r]!), 2);
  assert.deepEqual(Array.from(a.classMeans), Array.from(b.classMeans));
  assert.throws(() => fitGaussian(x, dim, labels, 3), /label 2 has no rows/);
  assert.throws(() => fitGaussian(x.subarray(0, 3 * dim), dim, labels.subarray(0, 3), 2), /more than 3 labelled rows/);
  assert.throws(() => fitGaussian(x, dim, labels.subarray(1), 2), RangeError);
  assert.throws(() => mahalanobis(a, [1, 2]), /2 values/);
});

test('a point far from every class has larger class and relative distances than a class centre', () => {
  const dim = 4;
  const { x, labels } = sample(12, 400, dim, 2);
  const g = fitGaussian(x, dim, labels, 2);
  const centre = Array.from({ length: dim }, (_, d) => {
    let s = 0;
    let c = 0;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] !== 0) continue;
      s += x[i * dim + d]!;
      c++;
    }
    return s / c;
  });
  const near = mahalanobis(g, centre);
  const far = mahalanobis(g, centre.map((v) => v + 50));
  assert.ok(near.classDistance < 1e-9 + 1e-6 && near.nearestClass === 0);
  assert.ok(far.classDistance > 100 * (near.classDistance + 1) && far.relative > near.relative);
});

test('invertLower gives L⁻¹ (L⁻¹ L = I), and the distances through it match forward substitution at dim 128', () => {
  const dim = 128;
  const classes = 10;
  const { x, labels } = sample(7, 3000, dim, classes);
  const g = fitGaussian(x, dim, labels, classes);
  const inv = invertLower(g.classFactor, dim);
  for (const [i, j] of [[0, 0], [5, 3], [127, 0], [127, 127], [64, 90]] as const) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += inv[i * dim + k]! * g.classFactor[k * dim + j]!;
    assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-9, `(L⁻¹L)[${i}][${j}] = ${s}`);
  }
  for (let r = 0; r < 50; r++) {
    const z = x.subarray(r * dim, (r + 1) * dim);
    const m = mahalanobis(g, z);
    const y = forwardSubstitute(g.classFactor, dim, z);
    const w = forwardSubstitute(g.globalFactor, dim, z);
    const cls = Array.from({ length: classes }, (_, c) => y.reduce((s, v, d) => s + (v - g.classMeans[c * dim + d]!) ** 2, 0));
    const glob = w.reduce((s, v, d) => s + (v - g.globalMean[d]!) ** 2, 0);
    cls.forEach((d, c) => assert.ok(Math.abs(d - m.classDistances[c]!) <= 1e-9 * Math.max(1, d), `class ${c}: ${d} vs ${m.classDistances[c]}`));
    assert.ok(Math.abs(glob - m.globalDistance) <= 1e-9 * Math.max(1, glob));
    assert.equal(m.nearestClass, cls.indexOf(Math.min(...cls)));
  }
});

test('packLower keeps the lower triangle row by row', () => {
  const m = Float64Array.from({ length: 9 }, (_, i) => i + 1); // [[1,2,3],[4,5,6],[7,8,9]]
  assert.deepEqual(Array.from(packLower(m, 3)), [1, 4, 5, 7, 8, 9]);
});

test('mahalanobis matches forward substitution at odd and even dims (rows of odd and even length)', () => {
  for (const dim of [1, 2, 3, 7, 33]) {
    const classes = 3;
    const { x, labels } = sample(dim, 400, dim, classes);
    const g = fitGaussian(x, dim, labels, classes);
    for (let r = 0; r < 20; r++) {
      const z = Array.from(x.subarray(r * dim, (r + 1) * dim));
      const m = mahalanobis(g, z);
      const y = forwardSubstitute(g.classFactor, dim, z);
      const w = forwardSubstitute(g.globalFactor, dim, z);
      const cls = Array.from({ length: classes }, (_, c) => y.reduce((s, v, d) => s + (v - g.classMeans[c * dim + d]!) ** 2, 0));
      const glob = w.reduce((s, v, d) => s + (v - g.globalMean[d]!) ** 2, 0);
      cls.forEach((d, c) => assert.ok(Math.abs(d - m.classDistances[c]!) <= 1e-9 * Math.max(1, d), `dim ${dim}, class ${c}: ${d} vs ${m.classDistances[c]}`));
      assert.ok(Math.abs(glob - m.globalDistance) <= 1e-9 * Math.max(1, glob), `dim ${dim}: ${glob} vs ${m.globalDistance}`);
    }
  }
});
