import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readModelManifest } from '../../../src/encoder/index.js';

const dir = mkdtempSync(join(tmpdir(), 'qualm-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, doc: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(doc));
  return p;
}

const text = {
  name: 'all-MiniLM-L6-v2',
  version: '1',
  input_kind: 'text',
  tokenizer: 'tokenizer.json',
  max_tokens: 256,
  pooling: 'mean',
  input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids' },
  output_name: 'last_hidden_state',
  dim: 384,
};

test('the committed features manifests read as before', async () => {
  const m = await readModelManifest('models/fmnist-simclr.json');
  assert.equal(m.input_kind, 'features');
  if (m.input_kind === 'features') assert.deepEqual([m.input_name, m.input_dim, m.output_name, m.dim], ['pixels', 784, 'embedding', 128]);
  // Extra keys (preprocess, seed, ...) are allowed and dropped.
  assert.equal((JSON.parse(readFileSync('models/fmnist-simclr.json', 'utf8')) as Record<string, unknown>).preprocess, 'pixels/255');
});

test('a text manifest reads with its tokenizer, max_tokens, pooling and input names', async () => {
  const m = await readModelManifest(write('text.json', text));
  assert.equal(m.input_kind, 'text');
  if (m.input_kind === 'text') {
    assert.deepEqual([m.tokenizer, m.max_tokens, m.pooling, m.dim], ['tokenizer.json', 256, 'mean', 384]);
    assert.equal(m.input_names.token_type_ids, 'token_type_ids');
  }
  const m2 = await readModelManifest(write('text2.json', { ...text, input_names: { input_ids: 'input_ids', attention_mask: 'attention_mask' } }));
  assert.ok(m2.input_kind === 'text' && m2.input_names.token_type_ids === undefined);
});

test('bad manifests are refused with the field named', async () => {
  const refused = async (doc: unknown, field: RegExp): Promise<void> => {
    await assert.rejects(readModelManifest(write('bad.json', doc)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'QUALM_MODEL_INVALID');
      assert.match(err.message, field);
      return true;
    });
  };
  await refused({ ...text, pooling: 'cls' }, /pooling/);
  await refused({ ...text, max_tokens: 0 }, /max_tokens/);
  await refused({ ...text, tokenizer: undefined }, /tokenizer/);
  await refused({ ...text, input_names: { input_ids: 'input_ids' } }, /input_names\.attention_mask/);
  await refused({ ...text, input_kind: 'image_b64' }, /input_kind/);
  // Without a kind, the common fields are named too.
  await refused({ name: 'x' }, /is invalid: version: .*; input_kind: /);
  // A features manifest keeps its own required fields.
  await refused({ name: 'x', version: '1', input_kind: 'features', input_name: 'pixels', output_name: 'e', dim: 8, normalized: true }, /input_dim/);
});
