import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MALFORMED_KINDS, sampleMix, type SampleKind } from '../../../src/cli/sample-mix.js';
import { parseSample } from '../../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../../src/datasets/index.js';

const EXPECTED: Record<(typeof MALFORMED_KINDS)[number], string> = {
  bad_json: 'QUALM_BAD_JSON',
  wrong_length: 'QUALM_WRONG_LENGTH',
  nan: 'QUALM_NON_FINITE',
  missing_id: 'QUALM_MISSING_ID',
  oversize: 'QUALM_OVERSIZE',
};

test('the mix has the asked proportions, and each kind parses as intended', () => {
  const fm = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const mnist = loadMnist();
  const maxBytes = 262144;
  const mix = sampleMix(fm, mnist, { oodShare: 0.15, malformedShare: 0.05, seed: 1, oversizeBytes: maxBytes + 1024, idPrefix: 't' });
  const counts = new Map<SampleKind, number>();
  const n = 4000;
  for (let i = 0; i < n; i++) {
    const m = mix.next().value as { kind: SampleKind; key: string | null; value: string };
    counts.set(m.kind, (counts.get(m.kind) ?? 0) + 1);
    const r = parseSample(Buffer.from(m.value), m.key === null ? null : Buffer.from(m.key), { inputKind: 'features', inputDim: 784, embeddingDim: 128, maxBytes });
    if (m.kind === 'in_dist' || m.kind === 'ood') {
      assert.ok(r.ok, `${m.kind} message must parse`);
      assert.equal(r.sample.meta?.source, m.kind === 'ood' ? 'mnist' : 'fashion-mnist/t10k');
      assert.ok(r.sample.input.kind === 'features');
      assert.equal(r.sample.input.values.length, 784);
    } else {
      assert.equal(r.ok ? 'ok' : r.code, EXPECTED[m.kind], `${m.kind}`);
    }
  }
  const share = (k: SampleKind): number => (counts.get(k) ?? 0) / n;
  assert.ok(Math.abs(share('ood') - 0.15) < 0.02);
  assert.ok(Math.abs(share('in_dist') - 0.8) < 0.02);
  const malformed = MALFORMED_KINDS.reduce((a, k) => a + share(k), 0);
  assert.ok(Math.abs(malformed - 0.05) < 0.015);
  for (const k of MALFORMED_KINDS) assert.ok((counts.get(k) ?? 0) > 0, `some ${k}`);
});

test('the same seed gives the same stream', () => {
  const fm = loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]);
  const mnist = loadMnist();
  const opts = { oodShare: 0.3, malformedShare: 0.1, seed: 9, oversizeBytes: 100, idPrefix: 's' };
  const a = sampleMix(fm, mnist, opts);
  const b = sampleMix(fm, mnist, opts);
  for (let i = 0; i < 50; i++) assert.deepEqual(a.next().value, b.next().value);
});
