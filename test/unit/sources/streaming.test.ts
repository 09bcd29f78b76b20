// A file far larger than the heap it is read with: the JSONL reader streams, it never holds
// the file. The child runs with a 64 MB old space; the file is ~200 MB.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const tmp = tempDir();
const LINES_PER_BLOCK = 5_000;
const BLOCKS = 200;
const HEAP_MB = 64;
let path = '';
let bytes = 0;

before(async () => {
  path = `${tmp.dir}/big.jsonl`;
  const out = createWriteStream(path);
  for (let b = 0; b < BLOCKS; b++) {
    const lines: string[] = [];
    for (let i = 0; i < LINES_PER_BLOCK; i++) {
      const n = b * LINES_PER_BLOCK + i;
      lines.push(JSON.stringify({ id: `r${n}`, input: { embedding: [n % 7, 1, -1] }, label: n % 10, meta: { pad: 'x'.repeat(120) } }));
    }
    const chunk = lines.join('\n') + '\n';
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
});
after(() => tmp.remove());

test(`a ~200 MB JSONL file is read whole with a ${HEAP_MB} MB heap`, () => {
  assert.ok(bytes > 190e6, `the file is ${bytes} bytes`);
  const res = runChild(`
    import { openSource } from SOURCES;
    const source = await openSource(PATH, { spec: { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 10000 }, skipInvalid: false });
    let n = 0; let sum = 0;
    for await (const r of source.records()) { n++; sum += Number(r.label); }
    console.log(JSON.stringify({ n, sum, heapMB: process.memoryUsage().heapUsed / 1e6 }));
  `);
  assert.equal(res.status, 0, String(res.stderr));
  const out = JSON.parse(String(res.stdout).trim().split('\n').pop() as string) as { n: number; sum: number };
  const n = BLOCKS * LINES_PER_BLOCK;
  assert.equal(out.n, n);
  assert.equal(out.sum, 4.5 * n);
});

test(`the same file does not fit that heap when held whole (the bound is real)`, () => {
  const res = runChild(`
    import { readFileSync } from 'node:fs';
    const lines = readFileSync(PATH, 'utf8').split('\\n').map((l) => (l === '' ? null : JSON.parse(l)));
    console.log(lines.length);
  `);
  assert.notEqual(res.status, 0, 'holding the whole file parsed should exhaust a 64 MB heap');
});

function runChild(script: string): ReturnType<typeof spawnSync> {
  const file = `${tmp.dir}/child-${Math.random().toString(36).slice(2)}.mts`;
  const sources = fileURLToPath(new URL('../../../src/sources/index.ts', import.meta.url));
  writeFileSync(file, script.replace('SOURCES', JSON.stringify(sources)).replace('PATH', JSON.stringify(path)));
  return spawnSync(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', file], { encoding: 'utf8', timeout: 300_000 });
}
