import assert from 'node:assert/strict';
import { test } from 'node:test';
import { calibrationMetrics, kendallTauB, scoreMetrics } from '../../../src/eval/index.js';
import { seededRandom } from '../../../src/util/random.js';

test('kendall_tau_ties_broken equals tau-b for a tie-free score', () => {
  const rnd = seededRandom(3);
  const n = 400;
  const error = Float64Array.from({ length: n }, () => (rnd() < 0.2 ? 1 : 0));
  const u = Float64Array.from(error, (e) => e * 0.3 + rnd());
  const m = scoreMetrics(u, error, error);
  assert.ok(Math.abs((m.kendall_tau_ties_broken as number) - (m.kendall_tau as number)) < 1e-12);
});

test('kendall_tau_ties_broken is the mean tau-b over random tie-breaks of a heavily tied score', () => {
  const rnd = seededRandom(4);
  const n = 300;
  const error = Float64Array.from({ length: n }, () => (rnd() < 0.25 ? 1 : 0));
  // Half the points share the score 0 (a unanimous vote), the rest spread out.
  const u = Float64Array.from(error, (e) => (rnd() < 0.5 ? 0 : e * 0.4 + rnd()));
  const m = scoreMetrics(u, error, error);
  assert.ok((m.kendall_tau as number) > (m.kendall_tau_ties_broken as number), 'ties inflate tau-b');
  let sum = 0;
  const trials = 400;
  for (let t = 0; t < trials; t++) sum += kendallTauB(Float64Array.from(u, (v) => v + rnd() * 1e-9), error);
  assert.ok(Math.abs(sum / trials - (m.kendall_tau_ties_broken as number)) < 0.005, `mean ${sum / trials} vs ${m.kendall_tau_ties_broken}`);
});

test('calibrationMetrics: a perfectly calibrated binned prediction has ECE 0; an over-confident one its gap', () => {
  // Ten bins of 100 points; bin b predicts (b + 0.5) / 10 and is right exactly that often.
  const predicted: number[] = [];
  const error: number[] = [];
  for (let b = 0; b < 10; b++) {
    for (let k = 0; k < 100; k++) {
      predicted.push((b + 0.5) / 10);
      error.push(k < (b + 0.5) * 10 ? 0 : 1);
    }
  }
  const good = calibrationMetrics(predicted, error);
  assert.ok(good.ece < 1e-12, `ece ${good.ece}`);
  assert.ok(Math.abs(good.mean_predicted_accuracy - good.accuracy) < 1e-12);
  const over = calibrationMetrics(predicted.map((p) => p + 0.05), error);
  assert.ok(Math.abs(over.ece - 0.05) < 1e-12, `ece ${over.ece}`);
  assert.ok(Math.abs(over.mean_predicted_accuracy - over.accuracy - 0.05) < 1e-12);
  // Brier against a hand computation.
  const brier = predicted.reduce((s, p, i) => s + (p - (1 - (error[i] as number))) ** 2, 0) / predicted.length;
  assert.ok(Math.abs(good.brier - brier) < 1e-12);
  assert.throws(() => calibrationMetrics([0.5], []), RangeError);
});
