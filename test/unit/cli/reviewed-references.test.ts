import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldReviews } from '../../../src/cli/reviewed-references.js';
import { encodeFloat32Base64, type LabelRecord, type ReviewRecord } from '../../../src/contracts/index.js';

const SHA = 'a'.repeat(64);
const names = ['cat', 'dog'];

function review(id: string, values: number[], sha = SHA): ReviewRecord {
  // Only the fields the fold reads matter here; the rest of a review record is irrelevant to it.
  return { id, embedding: { model_sha256: sha, dim: values.length, b64: encodeFloat32Base64(values) } } as unknown as ReviewRecord;
}
const label = (id: string, l: string, reviewer = 'ana'): LabelRecord => ({ id, label: l, reviewer, reviewed_at: '2026-11-29T18:00:00Z' });

test('label records joined with their review records become references; the latest label of an id wins', () => {
  const res = foldReviews(
    [review('a', [1, 0, 0]), review('b', [0, 1, 0])],
    [label('a', 'cat'), label('b', 'cat'), label('b', 'dog', 'bo')],
    { modelSha256: SHA, dim: 3, labelNames: names, existingIds: new Set() },
  );
  assert.deepEqual(res.skipped, {});
  assert.deepEqual(
    res.references.map((r) => [r.id, r.label, r.reviewer, Array.from(r.embedding)]),
    [
      ['review:a', 0, 'ana', [1, 0, 0]],
      ['review:b', 1, 'bo', [0, 1, 0]],
    ],
  );
});

test('every label record left out is counted by reason', () => {
  const res = foldReviews(
    [review('other', [1, 0, 0], 'b'.repeat(64)), review('short', [1, 0]), review('unknown', [1, 0, 0]), review('dup', [1, 0, 0]), review('nan', [Number.NaN, 0, 0])],
    [null, label('never-reviewed', 'cat'), label('other', 'cat'), label('short', 'cat'), label('unknown', 'horse'), label('dup', 'dog'), label('nan', 'dog')],
    { modelSha256: SHA, dim: 3, labelNames: names, existingIds: new Set(['review:dup']) },
  );
  assert.deepEqual(res.references, []);
  assert.deepEqual(res.skipped, { bad_label_record: 1, no_review_record: 1, other_model: 1, bad_embedding: 2, unknown_label: 1, already_a_reference: 1 });
});
