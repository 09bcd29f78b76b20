import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlagRules, SHIFT_MIN_MEAN, ShiftWindow, ThresholdPolicy, explain } from '../../../src/scoring/index.js';
import { signalsAt } from '../../helpers/signals.js';
import { seededRandom } from '../../../src/util/random.js';

const sig = signalsAt;

test('the window threshold: at least SHIFT_MIN_MEAN, and above the in-distribution bound 1/2 + 5/sqrt(12 n) for short windows', () => {
  assert.equal(new ShiftWindow(200).threshold, SHIFT_MIN_MEAN);
  assert.ok(Math.abs(new ShiftWindow(10).threshold - (0.5 + 5 / Math.sqrt(120))) < 1e-12);
  assert.throws(() => new ShiftWindow(1), RangeError);
  assert.throws(() => new ShiftWindow(10).observe(1.5), RangeError);
});

test('the window is shifted only when full and its mean is above the threshold; it follows the stream back', () => {
  const w = new ShiftWindow(300);
  for (let i = 0; i < 299; i++) w.observe(1);
  assert.equal(w.shifted, false, 'not full yet');
  w.observe(1);
  assert.equal(w.shifted, true);
  for (let i = 0; i < 200; i++) w.observe(0.5);
  assert.ok(Math.abs(w.mean - (100 + 100) / 300) < 1e-12);
  assert.equal(w.shifted, false, 'mean 0.667 is below 0.75');
  assert.equal(new ShiftWindow(4).threshold > 1, true, 'a 4-sample window can never tell');
});

test('in-distribution traffic (uniform percentiles) never trips a 200-sample window in 200,000 samples', () => {
  const rnd = seededRandom(3);
  const rules = new FlagRules({ uncertainty: new ThresholdPolicy(1), minPredictedAccuracy: null, oodRule: false, oodPercentile: 0.99, shiftWindow: 200 });
  let shifted = 0;
  for (let i = 0; i < 200_000; i++) if (rules.decide({ uncertainty: 0, predictedAccuracy: 0.9, signals: sig(rnd()) })?.rule === 'shifted_window') shifted++;
  assert.equal(shifted, 0);
});

test('a stream that moves further out than any single-sample cut sees is flagged from the moment the window fills', () => {
  const rnd = seededRandom(4);
  const rules = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: true, oodPercentile: 0.99, shiftWindow: 100 });
  assert.equal(rules.name, 'threshold(0.9) + beyond_references(0.99) + shifted_window(100)');
  const decisions = Array.from({ length: 300 }, () => rules.decide({ uncertainty: 0.5, predictedAccuracy: 0.7, signals: sig(0.8 + 0.19 * rnd()) }));
  assert.ok(decisions.slice(0, 99).every((d) => d === null), 'no sample is beyond the cut, and the window is filling');
  assert.ok(decisions.slice(99).every((d) => d?.rule === 'shifted_window' && d.reason === 'distribution_shift'));
  assert.match(explain('distribution_shift', sig(0.9), null), /moved off the training data/);
  // The per-sample rule still names its own reason first.
  assert.deepEqual(rules.decide({ uncertainty: 0.5, predictedAccuracy: 0.7, signals: sig(1) }), { rule: 'beyond_references', reason: 'out_of_distribution' });
  // Without a window (the default), nothing changes.
  const off = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: true, oodPercentile: 0.99 });
  for (let i = 0; i < 300; i++) assert.equal(off.decide({ uncertainty: 0.5, predictedAccuracy: 0.7, signals: sig(0.95) }), null);
  assert.equal(off.shiftWindow, null);
});
