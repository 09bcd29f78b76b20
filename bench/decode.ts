// npm run bench:decode [-- --n 20000]
//
// What parsing one input message costs the worker's main thread (its decode stage:
// parseSample, validation against the demo encoder's manifest included), for its 784 pixel
// values sent three ways: `features` as JSON numbers with 4 decimals (the demo's wire format,
// ~2.9 KB), `features` as JSON numbers at full float32 precision (what serialising the array
// as it is gives, ~6.2 KB), and `features_b64` (base64 of little-endian float32, ~4.2 KB). Each
// over --n messages, median of 5 rounds after a warm-up, in this process. Last line:
// {"json4_us":a,"json_full_us":b,"b64_us":c,"b64_vs_json4":c/a}
import { parseArgs } from 'node:util';
import { encodeFloat32Base64, parseSample, type InputSpec } from '../src/contracts/index.js';
import { loadFashionMnist, row } from '../src/datasets/index.js';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '20000' } } });
const N = Number(args.n);
const images = loadFashionMnist('t10k');
const spec: InputSpec = { inputKind: 'features', inputDim: 784, valueRange: [0, 1], embeddingDim: 128, maxBytes: 1_048_576 };
const msg = (i: number, features: unknown, field = 'features'): Buffer => Buffer.from(JSON.stringify({ id: `m${i}`, input: { [field]: features }, meta: { source: 'bench' } }));
const pool = 500;
const sets: Record<string, Buffer[]> = {
  json4: Array.from({ length: pool }, (_, i) => msg(i, Array.from(row(images, i), (v) => Number(v.toFixed(4))))),
  json_full: Array.from({ length: pool }, (_, i) => msg(i, Array.from(row(images, i)))),
  b64: Array.from({ length: pool }, (_, i) => msg(i, encodeFloat32Base64(row(images, i)), 'features_b64')),
};
const us: Record<string, number> = {};
for (const [name, messages] of Object.entries(sets)) {
  const rounds: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const res = parseSample(messages[i % pool] as Buffer, null, spec);
      if (!res.ok) throw new Error(`${name}: ${res.message}`);
    }
    if (r > 0) rounds.push(((performance.now() - t0) / N) * 1000); // round 0 warms up
  }
  rounds.sort((a, b) => a - b);
  us[name] = Math.round((rounds[2] as number) * 100) / 100;
  process.stderr.write(`${name}: ${us[name]} µs per message (${Math.round((sets[name]?.[0]?.length ?? 0) / 100) / 10} KB)\n`);
}
console.log(JSON.stringify({ json4_us: us.json4, json_full_us: us.json_full, b64_us: us.b64, b64_vs_json4: Math.round(((us.b64 as number) / (us.json4 as number)) * 1000) / 1000 }));
