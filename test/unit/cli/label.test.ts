import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulatedLabels } from '../../../src/cli/commands/label.js';
import type { ReviewRecord } from '../../../src/contracts/index.js';

const review = (id: string, label: unknown): ReviewRecord => ({ id, meta: label === undefined ? null : { label } }) as unknown as ReviewRecord;

test('the stand-in reviewer labels up to N reviewed samples with their meta.label, once each', () => {
  const now = (): Date => new Date('2026-11-29T18:00:00Z');
  const out = simulatedLabels([review('a', 'Bag'), review('b', undefined), review('a', 'Bag'), review('c', 7), review('d', 'Coat'), review('e', 'Shirt')], 2, 'sim', now);
  assert.deepEqual(out, [
    { id: 'a', label: 'Bag', reviewer: 'sim', reviewed_at: '2026-11-29T18:00:00.000Z' },
    { id: 'd', label: 'Coat', reviewer: 'sim', reviewed_at: '2026-11-29T18:00:00.000Z' },
  ]);
});
