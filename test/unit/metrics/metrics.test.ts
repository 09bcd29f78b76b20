import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QualmMetrics, type DriftView } from '../../../src/metrics/index.js';

test('drift gauges read the stream window and the reference baseline at scrape time', async () => {
  const m = new QualmMetrics({ defaultMetrics: false });
  let stream: DriftView = { samples: 0, oodRatio: 0, uncertainty: { '0.5': undefined } };
  const reference: DriftView = { samples: 1001, oodRatio: 0.011, uncertainty: { '0.5': 0.5, '0.9': 0.9 } };
  m.setDrift({ stream: () => stream, reference: () => reference });
  let text = await m.registry.metrics();
  assert.match(text, /^qualm_drift_window_samples 0$/m);
  assert.match(text, /^qualm_drift_ood_ratio\{source="reference"\} 0\.011$/m);
  assert.doesNotMatch(text, /qualm_drift_uncertainty\{source="stream"/, 'no stream quantile before any sample');

  stream = { samples: 250, oodRatio: 0.4, uncertainty: { '0.5': 0.3, '0.9': 0.97 } };
  text = await m.registry.metrics();
  assert.match(text, /^qualm_drift_window_samples 250$/m);
  assert.match(text, /^qualm_drift_ood_ratio\{source="stream"\} 0\.4$/m);
  assert.match(text, /^qualm_drift_uncertainty\{source="stream",q="0\.9"\} 0\.97$/m);
  assert.match(text, /^qualm_drift_uncertainty\{source="reference",q="0\.5"\} 0\.5$/m);
});

test('without a drift source the drift gauges export no series', async () => {
  const text = await new QualmMetrics({ defaultMetrics: false }).registry.metrics();
  assert.doesNotMatch(text, /^qualm_drift_ood_ratio\{/m);
});

test('the default metrics leave out the _total gauges promtool rejects, and keep the rest', async () => {
  const text = await new QualmMetrics().registry.metrics();
  assert.doesNotMatch(text, /^nodejs_active_(handles|requests|resources)_total /m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.match(text, /^process_resident_memory_bytes /m);
});

test('labelled counters start at 0, so that Prometheus sees their first increase', async () => {
  const m = new QualmMetrics({ defaultMetrics: false });
  m.primeLabels({ flagReasons: ['low_density'], dlqCodes: ['QUALM_BAD_JSON'] });
  const text = await m.registry.metrics();
  for (const outcome of ['swapped', 'refused', 'error']) assert.match(text, new RegExp(`^qualm_bundle_refresh_total\\{outcome="${outcome}"\\} 0$`, 'm'));
  assert.match(text, /^qualm_samples_flagged_total\{reason="low_density"\} 0$/m);
  assert.match(text, /^qualm_dlq_messages_total\{code="QUALM_BAD_JSON"\} 0$/m);
});
