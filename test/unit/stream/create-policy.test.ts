import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { createPolicy } from '../../../src/stream/index.js';

test('the worker\'s flag rules get QUALM_SHIFT_WINDOW: on by default, off with 0', () => {
  assert.notEqual(createPolicy(loadConfig({})).shiftWindow, null);
  assert.equal(createPolicy(loadConfig({ QUALM_SHIFT_WINDOW: '0' })).shiftWindow, null);
});
