import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { TargetRatePolicy, ThresholdPolicy, explain, flagReason, type Signals } from '../../../src/scoring/index.js';

test('threshold policy flags at or above the threshold', () => {
  const p = new ThresholdPolicy(0.6);
  assert.equal(p.decide(0.59), false);
  assert.equal(p.decide(0.6), true);
  assert.equal(p.decide(1), true);
  assert.throws(() => new ThresholdPolicy(1.2), RangeError);
});

test('target-rate policy flags about the target share of stationary traffic', () => {
  const rnd = seededRandom(5);
  const p = new TargetRatePolicy(0.1, 1000, 0.5);
  let flagged = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) if (p.decide(rnd())) flagged++;
  assert.ok(Math.abs(flagged / n - 0.1) < 0.01, `flag rate ${flagged / n}`);
});

test('target-rate policy follows drift: the share stays on target after the scale changes', () => {
  const rnd = seededRandom(6);
  const p = new TargetRatePolicy(0.05, 500, 0.5);
  for (let i = 0; i < 2000; i++) p.decide(rnd() * 0.2);
  let flagged = 0;
  // Traffic moves to a higher range: after one window, the cut has moved with it.
  for (let i = 0; i < 500; i++) p.decide(0.5 + rnd() * 0.5);
  for (let i = 0; i < 4000; i++) if (p.decide(0.5 + rnd() * 0.5)) flagged++;
  assert.ok(Math.abs(flagged / 4000 - 0.05) < 0.015, `flag rate ${flagged / 4000}`);
});

test('target-rate policy uses the fallback threshold while warming up', () => {
  const p = new TargetRatePolicy(0.1, 1000, 0.7, 10);
  assert.equal(p.cut(), 0.7);
  assert.equal(p.decide(0.69), false);
  assert.equal(p.decide(0.71), true);
});

test('maximal uncertainty is always flagged, even when it fills the window', () => {
  const p = new TargetRatePolicy(0.1, 20, 0.5, 5);
  for (let i = 0; i < 50; i++) assert.equal(p.decide(1), true);
});

const sig = (densityPercentile: number, labelAgreement: number | null): Signals => ({
  meanKnnDistance: 0.2,
  kthKnnDistance: 0.3,
  densityPercentile,
  relativeDensity: 1,
  relativeDensityPercentile: densityPercentile,
  labelAgreement,
  labelEntropy: labelAgreement === null ? null : 1 - labelAgreement,
});

test('flag reasons', () => {
  assert.equal(flagReason(sig(0.995, 1), 0.99), 'out_of_distribution');
  assert.equal(flagReason(sig(0.3, 0.4), 0.99), 'ambiguous_neighborhood');
  assert.equal(flagReason(sig(0.9, 0.95), 0.99), 'low_density');
  assert.equal(flagReason(sig(0.9, null), 0.99), 'low_density');
  assert.match(explain('ambiguous_neighborhood', sig(0.3, 0.4), 'Shirt'), /40\.0% of the weighted vote goes to Shirt/);
  assert.match(explain('out_of_distribution', sig(0.995, 1), null), /99\.5%/);
});
