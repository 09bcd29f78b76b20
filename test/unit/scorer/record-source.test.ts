import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScoreFlags, recordSource } from '../../../src/cli/commands/score.js';
import { UsageError } from '../../../src/cli/args.js';

test("an offline record's source, from where the source reader found the sample", () => {
  assert.deepEqual(recordSource('data/refs.jsonl:17', 'data/refs.jsonl'), { file: 'data/refs.jsonl', line: 17 });
  assert.deepEqual(recordSource('C:/x:y.jsonl:3', 'C:/x:y.jsonl'), { file: 'C:/x:y.jsonl', line: 3 }, 'the last colon splits');
  assert.deepEqual(recordSource('stdin:4', '-'), { file: '-', line: 4 });
  assert.deepEqual(recordSource('emb.npy#16', 'emb.npy'), { file: 'emb.npy', row: 16 });
  assert.deepEqual(recordSource('ids.csv:5', 'emb.npy'), { file: 'ids.csv', line: 5 }, 'a sidecar line');
  assert.deepEqual(recordSource('topic qualm.samples/2@42', 'topic:qualm.samples'), { topic: 'qualm.samples', partition: 2, offset: '42' });
  assert.equal(recordSource('fashion-mnist/t10k#3', 'builtin:fashion-mnist/t10k'), null);
  assert.equal(recordSource('somewhere', 'x.parquet'), null);
});

test('score flags: --in is required, formats are jsonl or csv, --out may not overwrite --in', () => {
  assert.deepEqual(parseScoreFlags(['--in', 'a.jsonl']), { in: 'a.jsonl', out: '-', format: 'jsonl', flaggedOnly: false, skipInvalid: false });
  assert.deepEqual(parseScoreFlags(['--in', '-', '--out', 'o.csv', '--format', 'csv', '--flagged-only', '--skip-invalid', '--dim', '16']), {
    in: '-',
    out: 'o.csv',
    format: 'csv',
    flaggedOnly: true,
    skipInvalid: true,
    dim: 16,
  });
  assert.equal(parseScoreFlags(['--help']), 'help');
  assert.throws(() => parseScoreFlags([]), (e: unknown) => e instanceof UsageError && /--in/.test(e.message));
  assert.throws(() => parseScoreFlags(['--in', 'a.jsonl', '--format', 'xml']), (e: unknown) => e instanceof UsageError && /jsonl or csv/.test(e.message));
  assert.throws(() => parseScoreFlags(['--in', 'a.jsonl', '--out', 'a.jsonl']), UsageError);
  assert.throws(() => parseScoreFlags(['--in', 'a.jsonl', '--bogus']), UsageError);
});
