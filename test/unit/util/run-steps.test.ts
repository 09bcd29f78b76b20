import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSteps } from '../../../src/util/run-steps.js';

test('every step runs in order even when one fails; failures are reported by name', async () => {
  const ran: string[] = [];
  const failed: string[] = [];
  await runSteps(
    [
      ['a', () => Promise.resolve(void ran.push('a'))],
      ['b', () => Promise.reject(new Error('boom'))],
      ['c', () => Promise.resolve(void ran.push('c'))],
    ],
    (step, err) => failed.push(`${step}: ${(err as Error).message}`),
  );
  assert.deepEqual(ran, ['a', 'c']);
  assert.deepEqual(failed, ['b: boom']);
});
