import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { parseJsonYielding } from '../../../src/util/json-yielding.js';

const ALPHABET = ['a', 'Z', '0', ' ', ',', ']', '[', '"', '\\', '\\\\', '\n', '\t', 'é', '😀', '\u0001', '\\"', '"]', '", "'];

function randomIds(n: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: n }, () => Array.from({ length: Math.floor(rnd() * 12) }, () => ALPHABET[Math.floor(rnd() * ALPHABET.length)]).join(''));
}

test('a large array of strings parses in slices to exactly what JSON.parse gives', async () => {
  for (const [seed, indent] of [[1, undefined], [2, 2], [3, '\t']] as const) {
    const ids = randomIds(3000, seed);
    const text = JSON.stringify(ids, null, indent);
    for (const slice of [1, 7, 100, 4096]) assert.deepEqual(await parseJsonYielding(text, slice), ids, `seed ${seed}, slice ${slice}`);
  }
  assert.deepEqual(await parseJsonYielding(' [ ] ', 1), []);
});

test('anything else goes to JSON.parse whole, with its result or its error', async () => {
  for (const text of ['[1, 2, 3]', '["a", 1]', '{"a": ["b"]}', '"just a string"', '[["a"]]', '[null]']) {
    assert.deepEqual(await parseJsonYielding(text, 1), JSON.parse(text), text);
  }
  for (const text of ['["a", "b"', '["a" "b"]', '["a",]', '["a"] x', '["\\x"]', '["a\u0001"]', '']) {
    await assert.rejects(parseJsonYielding(text, 1), SyntaxError, JSON.stringify(text));
  }
});
