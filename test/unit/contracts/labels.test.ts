import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLabelRecord } from '../../../src/contracts/index.js';

test('a label record parses; each bad one gets a code and a reason naming the field', () => {
  const good = { id: 's-1', label: 'Bag', reviewer: 'ana', reviewed_at: '2026-11-29T18:00:00Z' };
  assert.deepEqual(parseLabelRecord(JSON.stringify(good)), { ok: true, record: good });
  const bad = (v: unknown): { code: string; message: string } => {
    const r = parseLabelRecord(v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));
    assert.equal(r.ok, false);
    return r.ok ? { code: '', message: '' } : { code: r.code, message: r.message };
  };
  assert.equal(bad(null).code, 'QUALM_EMPTY');
  assert.equal(bad('{"id":').code, 'QUALM_BAD_JSON');
  assert.equal(bad([good]).code, 'QUALM_BAD_SCHEMA');
  assert.deepEqual(bad({ ...good, id: '' }), { code: 'QUALM_MISSING_ID', message: 'id must be a non-empty string of at most 256 characters' });
  assert.match(bad({ ...good, label: 7 }).message, /^label must be/);
  assert.match(bad({ id: 's', label: 'Bag', reviewed_at: good.reviewed_at }).message, /^reviewer must be/);
  assert.match(bad({ ...good, reviewed_at: 'yesterday' }).message, /reviewed_at must be an ISO 8601 time/);
});
