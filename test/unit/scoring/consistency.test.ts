import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jaccard, viewDispersion, viewJaccard } from '../../../src/scoring/index.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

/** Brute-force Jaccard: intersection and union by membership over plain arrays. */
function bruteJaccard(a: readonly string[], b: readonly string[]): number {
  const union = [...a, ...b].filter((x, i, all) => all.indexOf(x) === i);
  const inter = a.filter((x) => b.includes(x));
  return union.length === 0 ? 1 : inter.length / union.length;
}

/** n distinct ids drawn from a pool of `pool` ids. */
function randomIdSet(rnd: () => number, n: number, pool: number): string[] {
  const ids = new Set<string>();
  while (ids.size < n) ids.add(`ref#${Math.floor(rnd() * pool)}`);
  return [...ids];
}

test('jaccard on explicit sets', () => {
  assert.equal(jaccard(['a', 'b'], ['b', 'c']), 1 / 3);
  assert.equal(jaccard(['a', 'b'], ['b', 'a']), 1);
  assert.equal(jaccard(['a'], ['b']), 0);
  assert.equal(jaccard([], []), 1);
  assert.equal(jaccard(['a'], []), 0);
});

test('viewJaccard on explicit sets: the mean over all pairs of views', () => {
  assert.equal(viewJaccard([['a', 'b'], ['b', 'a']]), 1);
  assert.equal(viewJaccard([['a'], ['b'], ['c']]), 0);
  // Pairs: (1,2) 1/3, (1,3) 1, (2,3) 1/3 -> 5/9.
  assert.ok(Math.abs(viewJaccard([['a', 'b'], ['b', 'c'], ['a', 'b']]) - 5 / 9) < 1e-12);
  // Four views: (1,2) 1/3, (1,3) 0, (1,4) 2/3, (2,3) 1/3, (2,4) 1/4, (3,4) 0 -> (19/12) / 6.
  const four = [['a', 'b'], ['b', 'c'], ['c', 'd'], ['a', 'b', 'e']];
  assert.ok(Math.abs(viewJaccard(four) - 19 / 72) < 1e-12);
  assert.throws(() => viewJaccard([['a']]), RangeError);
  assert.throws(() => viewJaccard([]), RangeError);
});

test('viewJaccard matches a brute-force reference on random id sets', () => {
  const rnd = seededRandom(11);
  for (let trial = 0; trial < 300; trial++) {
    const views = 2 + Math.floor(rnd() * 7);
    const k = Math.floor(rnd() * 25);
    const pool = k + 1 + Math.floor(rnd() * 40);
    const sets = Array.from({ length: views }, () => randomIdSet(rnd, k, pool));
    let sum = 0;
    let pairs = 0;
    for (let i = 0; i < views; i++) {
      for (let j = 0; j < views; j++) {
        if (i === j) continue;
        sum += bruteJaccard(sets[i] as string[], sets[j] as string[]);
        pairs++;
      }
    }
    const got = viewJaccard(sets);
    assert.ok(Math.abs(got - sum / pairs) < 1e-12, `trial ${trial}: ${got} vs ${sum / pairs}`);
    assert.ok(got >= 0 && got <= 1);
  }
});

/** Brute force: normalise each row, average, normalise the mean, mean of 1 - cosine. */
function bruteDispersion(rows: number[][]): number {
  const unit = rows.map((r) => {
    const n = Math.hypot(...r);
    return n === 0 ? r.map(() => 0) : r.map((v) => v / n);
  });
  const dim = rows[0]?.length ?? 0;
  const mean = Array.from({ length: dim }, (_, d) => unit.reduce((s, u) => s + (u[d] as number), 0) / unit.length);
  const mn = Math.hypot(...mean);
  if (mn === 0) return 1;
  return unit.reduce((s, u) => s + 1 - u.reduce((c, v, d) => c + (v * (mean[d] as number)) / mn, 0), 0) / unit.length;
}

function randomRows(rnd: () => number, T: number, dim: number, unit: boolean): number[][] {
  return Array.from({ length: T }, () => {
    const r = Array.from({ length: dim }, () => gaussian(rnd));
    const n = Math.hypot(...r);
    return unit ? r.map((v) => v / n) : r.map((v) => v * (0.1 + rnd() * 3));
  });
}

test('viewDispersion: 0 for identical views, 1 for views that cancel out, cosine to the mean direction', () => {
  const z = Float32Array.from([0.6, 0.8, 0.6, 0.8, 0.6, 0.8]);
  assert.equal(viewDispersion(z, 3, 2), 0);
  assert.equal(viewDispersion(Float32Array.from([1, 0]), 1, 2), 0);
  assert.equal(viewDispersion(Float32Array.from([1, 0, -1, 0]), 2, 2), 1);
  // Two orthogonal unit views: the mean direction is at 45 degrees to each.
  assert.ok(Math.abs(viewDispersion(Float32Array.from([1, 0, 0, 1]), 2, 2) - (1 - Math.SQRT1_2)) < 1e-7);
  // Only the direction of each view counts.
  assert.ok(Math.abs(viewDispersion(Float32Array.from([5, 0, 0, 0.5]), 2, 2) - (1 - Math.SQRT1_2)) < 1e-7);
  assert.throws(() => viewDispersion(new Float32Array(5), 2, 2), RangeError);
  assert.throws(() => viewDispersion(new Float32Array(0), 0, 2), RangeError);
});

test('viewDispersion matches a brute-force reference, and 1 - |mean| for unit rows', () => {
  const rnd = seededRandom(5);
  for (let trial = 0; trial < 200; trial++) {
    const T = 1 + Math.floor(rnd() * 9);
    const dim = 1 + Math.floor(rnd() * 40);
    const unit = trial % 2 === 0;
    // Views near a common direction (small spread) or spread anywhere.
    const base = randomRows(rnd, 1, dim, true)[0] as number[];
    const spread = rnd() < 0.5 ? 0.05 : 2;
    const rows = randomRows(rnd, T, dim, false).map((r) => r.map((v, d) => (base[d] as number) + spread * v));
    const normed = unit ? rows.map((r) => r.map((v) => v / Math.hypot(...r))) : rows;
    const z = Float32Array.from(normed.flat());
    // The reference sees the float32-rounded values the function sees.
    const rounded = Array.from({ length: T }, (_, t) => Array.from(z.subarray(t * dim, (t + 1) * dim)));
    const got = viewDispersion(z, T, dim);
    assert.ok(Math.abs(got - bruteDispersion(rounded)) < 1e-9, `trial ${trial}`);
    assert.ok(got >= 0 && got <= 1 + 1e-12);
    if (unit) {
      const mean = Array.from({ length: dim }, (_, d) => rounded.reduce((s, r) => s + (r[d] as number) / Math.hypot(...r), 0) / T);
      assert.ok(Math.abs(got - (1 - Math.hypot(...mean))) < 1e-9, `trial ${trial}: 1 - |mean|`);
    }
  }
});

test('viewDispersion: a zero row counts as cosine 0', () => {
  const got = viewDispersion(Float32Array.from([1, 0, 0, 0]), 2, 2);
  assert.ok(Math.abs(got - bruteDispersion([[1, 0], [0, 0]])) < 1e-12);
  assert.equal(got, 0.5);
  assert.equal(viewDispersion(new Float32Array(4), 2, 2), 1);
});
