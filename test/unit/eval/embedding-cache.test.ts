import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EmbeddingCache, hashTexts, type EmbeddingCacheKey } from '../../../src/eval/embedding-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'qualm-emb-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const key = (over: Partial<EmbeddingCacheKey> = {}): EmbeddingCacheKey => ({
  modelSha256: 'a'.repeat(64),
  settings: ['max_tokens=256', 'pooling=mean'],
  inputsSha256: hashTexts(['one', 'two']),
  what: 'mean-pooled',
  ...over,
});

test('hashTexts depends on every text and on where one ends', () => {
  assert.equal(hashTexts(['ab', 'c']), hashTexts(['ab', 'c']));
  assert.notEqual(hashTexts(['ab', 'c']), hashTexts(['a', 'bc']));
  assert.notEqual(hashTexts(['ab', 'c']), hashTexts(['c', 'ab']));
  assert.notEqual(hashTexts(['']), hashTexts([]));
});

test('a miss computes and stores, a hit returns the same rows without computing', async () => {
  const cache = new EmbeddingCache(join(dir, 'a'));
  const rows = Float32Array.from([1.5, -2, 0.25, 3, 1e-7, -0]);
  let calls = 0;
  const compute = (): Promise<Float32Array> => {
    calls++;
    return Promise.resolve(rows);
  };
  const first = await cache.getOrCompute(key(), 2, 3, compute);
  assert.deepEqual({ hit: first.hit, calls }, { hit: false, calls: 1 });
  const second = await cache.getOrCompute(key(), 2, 3, compute);
  assert.deepEqual({ hit: second.hit, calls }, { hit: true, calls: 1 });
  assert.deepEqual(Array.from(second.rows), Array.from(rows));
  assert.ok(readdirSync(join(dir, 'a')).every((f) => !f.endsWith('.tmp.f32') && !f.endsWith('.tmp.json')), 'no temporary files left');
});

test('another model, setting, input set or shape is a miss', async () => {
  const cache = new EmbeddingCache(join(dir, 'b'));
  await cache.put(key(), new Float32Array(6).fill(1), 3);
  assert.ok((await cache.get(key(), 2, 3)) !== undefined);
  assert.equal(await cache.get(key({ modelSha256: 'b'.repeat(64) }), 2, 3), undefined);
  assert.equal(await cache.get(key({ settings: ['max_tokens=128', 'pooling=mean'] }), 2, 3), undefined);
  assert.equal(await cache.get(key({ inputsSha256: hashTexts(['one', 'three']) }), 2, 3), undefined);
  assert.equal(await cache.get(key({ what: 'normalised' }), 2, 3), undefined);
  assert.equal(await cache.get(key(), 3, 2), undefined);
});

test('a damaged entry is a miss and is recomputed', async () => {
  const sub = join(dir, 'c');
  const cache = new EmbeddingCache(sub);
  await cache.put(key(), new Float32Array(6).fill(2), 3);
  const data = readdirSync(sub).find((f) => f.endsWith('.f32'));
  assert.ok(data !== undefined);
  writeFileSync(join(sub, data), Buffer.alloc(24, 0));
  assert.equal(await cache.get(key(), 2, 3), undefined);
  const again = await cache.getOrCompute(key(), 2, 3, () => Promise.resolve(new Float32Array(6).fill(3)));
  assert.equal(again.hit, false);
  assert.deepEqual(Array.from((await cache.get(key(), 2, 3)) ?? []), [3, 3, 3, 3, 3, 3]);
  await assert.rejects(cache.getOrCompute(key({ what: 'x' }), 2, 3, () => Promise.resolve(new Float32Array(5))), RangeError);
});
