import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlagRules, ThresholdPolicy, beyondReferences, oodMeasureOf, oodPercentileOf } from '../../../src/scoring/index.js';
import { signalsAt } from '../../helpers/signals.js';
import { gaussian, seededRandom } from '../../../src/util/random.js';

const sig = signalsAt;

/** The standard normal CDF (Abramowitz-Stegun 26.2.17, |error| < 7.5e-8). */
function phi(x: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const d = 0.3989422804014327 * Math.exp((-x * x) / 2);
  const p = d * t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  return x >= 0 ? 1 - p : p;
}

/** Share flagged at `percentile` of n in-distribution samples whose two percentiles have a Gaussian copula of correlation rho. */
function flagRate(rho: number, percentile: number, n: number, seed: number): number {
  const rnd = seededRandom(seed);
  let flagged = 0;
  for (let i = 0; i < n; i++) {
    const a = gaussian(rnd);
    const b = rho * a + Math.sqrt(1 - rho * rho) * gaussian(rnd);
    if (beyondReferences(sig(phi(a), phi(b)), percentile)) flagged++;
  }
  return flagged / n;
}

test('without the Gaussian the out-of-distribution percentile is the kNN density percentile', () => {
  assert.equal(oodPercentileOf(sig(0.42, null)), 0.42);
  assert.equal(oodMeasureOf(sig(0.42, null)), 'density');
});

test('with the Gaussian it is the square of the larger of the two percentiles (Sidak)', () => {
  assert.equal(oodPercentileOf(sig(0.9, 0.5)), 0.81);
  assert.equal(oodPercentileOf(sig(0.5, 0.9)), 0.81);
  assert.equal(oodPercentileOf(sig(1, 0)), 1, 'beyond every reference on either measure is beyond every reference');
  assert.equal(oodMeasureOf(sig(0.9, 0.5)), 'density');
  assert.equal(oodMeasureOf(sig(0.5, 0.9)), 'mahalanobis');
});

test('either measure alone far enough out fires the rule; each is held at sqrt(P)', () => {
  const rules = new FlagRules({ uncertainty: new ThresholdPolicy(0.9), minPredictedAccuracy: null, oodRule: true, oodPercentile: 0.99 });
  const ood = { rule: 'beyond_references', reason: 'out_of_distribution' };
  assert.deepEqual(rules.decide({ uncertainty: 0.1, predictedAccuracy: 0.9, signals: sig(0.996, 0.1) }), ood);
  assert.deepEqual(rules.decide({ uncertainty: 0.1, predictedAccuracy: 0.9, signals: sig(0.1, 0.996) }), ood);
  assert.equal(rules.decide({ uncertainty: 0.1, predictedAccuracy: 0.9, signals: sig(0.994, 0.994) }), null);
});

test('in-distribution false-positive rate: the nominal 1 - P for independent measures, at most that for positively dependent ones', () => {
  const n = 200_000;
  for (const percentile of [0.99, 0.95]) {
    const nominal = 1 - percentile;
    const independent = flagRate(0, percentile, n, 11);
    // Binomial standard error at n = 200,000 and 1%: 0.00022; four of them.
    assert.ok(Math.abs(independent - nominal) < 4 * Math.sqrt((nominal * (1 - nominal)) / n) + 1e-9, `independent: ${independent} vs ${nominal}`);
    for (const rho of [0.3, 0.6, 0.9]) {
      const rate = flagRate(rho, percentile, n, 12);
      assert.ok(rate <= nominal + 4 * Math.sqrt((nominal * (1 - nominal)) / n), `rho ${rho}: ${rate} above ${nominal}`);
      assert.ok(rate >= nominal / 2 - 4 * Math.sqrt((nominal * (1 - nominal)) / n), `rho ${rho}: ${rate} below the Bonferroni floor ${nominal / 2}`);
    }
    // Identical measures: only the split level, sqrt(P), counts.
    const same = flagRate(1, percentile, n, 13);
    assert.ok(Math.abs(same - (1 - Math.sqrt(percentile))) < 4 * Math.sqrt(nominal / n), `identical: ${same}`);
  }
});
