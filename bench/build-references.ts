// npm run bench:build-refs [-- --n 1000000 --dim 32 --labels 10 --seed 1 --k 20]
//
// `qualm build-index --references refs.jsonl` on a generated file of N embedding lines (the
// input wire format with `input.embedding` and a `label`), as a child process: its peak RSS
// (VmHWM from /proc/PID/status, sampled every 50 ms) and wall time, beside the file's size and
// the peak RSS of a child that holds the same file as JSON (every line JSON.parse'd into one
// array), and the peak RSS of the same command on 1,000 lines (its fixed cost), measured in
// the same run. The encoder is a generated ONNX random projection of
// 784 pixels to --dim values (embedding lines skip it; build-index opens it for its sha256,
// name and dimension). Last line:
//   {"n":N,"dim":D,"file_mb":F,"build_peak_rss_mb":R,"build_seconds":S,"build_read_peak_rss_mb":..,"build_read_seconds":..,
//    "build_1k_peak_rss_mb":B,"json_peak_rss_mb":J,"ratio":R/J}
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gaussian, seededRandom } from '../src/util/random.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    dim: { type: 'string', default: '32' },
    labels: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    k: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.n);
const DIM = Number(values.dim);
const LABELS = Number(values.labels);
const SEED = Number(values.seed);
const BIN = fileURLToPath(new URL('../bin/qualm.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'qualm-bench-refs-'));

// --- a minimal ONNX model (protobuf written by hand): embedding = pixels x W, W 784 x DIM ---
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const field = (no: number, wire: 0 | 2, body: number | Buffer | string): Buffer => {
  const key = varint((no << 3) | wire);
  if (wire === 0) return Buffer.concat([key, varint(body as number)]);
  const b = typeof body === 'string' ? Buffer.from(body) : (body as Buffer);
  return Buffer.concat([key, varint(b.length), b]);
};
const msg = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
/** A float tensor type [N (symbolic), cols]. */
const tensorType = (cols: number): Buffer =>
  field(1, 2, msg(field(1, 0, 1), field(2, 2, msg(field(1, 2, field(2, 2, 'N')), field(1, 2, field(1, 0, cols))))));
const valueInfo = (name: string, cols: number): Buffer => msg(field(1, 2, name), field(2, 2, tensorType(cols)));

function projectionModel(inputDim: number, dim: number, seed: number): Buffer {
  const rnd = seededRandom(seed);
  const w = Buffer.alloc(inputDim * dim * 4);
  for (let i = 0; i < inputDim * dim; i++) w.writeFloatLE(gaussian(rnd) / Math.sqrt(inputDim), i * 4);
  const initializer = msg(field(1, 0, inputDim), field(1, 0, dim), field(2, 0, 1), field(8, 2, 'W'), field(9, 2, w));
  const node = msg(field(1, 2, 'pixels'), field(1, 2, 'W'), field(2, 2, 'embedding'), field(3, 2, 'project'), field(4, 2, 'MatMul'));
  const graph = msg(field(1, 2, node), field(2, 2, 'projection'), field(5, 2, initializer), field(11, 2, valueInfo('pixels', inputDim)), field(12, 2, valueInfo('embedding', dim)));
  return msg(field(1, 0, 8), field(2, 2, 'qualm-bench'), field(7, 2, graph), field(8, 2, msg(field(1, 2, ''), field(2, 0, 17))));
}

const modelPath = join(dir, 'projection.onnx');
writeFileSync(modelPath, projectionModel(784, DIM, SEED));
writeFileSync(
  join(dir, 'projection.json'),
  JSON.stringify({ name: 'bench-projection', version: '1', input_kind: 'features', input_name: 'pixels', input_dim: 784, output_name: 'embedding', dim: DIM, normalized: true }, null, 2),
);

// --- the references: N lines around LABELS random centres, seeded ---
async function writeReferences(path: string, n: number): Promise<void> {
  const rnd = seededRandom(SEED + 1);
  const centres = Array.from({ length: LABELS }, () => Array.from({ length: DIM }, () => gaussian(rnd)));
  const out = createWriteStream(path);
  let lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % LABELS;
    const c = centres[label] as number[];
    const v = c.map((x) => Number((x + 0.8 * gaussian(rnd)).toFixed(4)));
    lines.push(`{"id":"r${i}","input":{"embedding":[${v.join(',')}]},"label":"class-${label}"}`);
    if (lines.length === 10_000 || i === n - 1) {
      if (!out.write(lines.join('\n') + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
      lines = [];
    }
  }
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
}

/** Peak RSS (VmHWM) of a child in MB, sampled until it exits, and its wall time. */
/**
 * Peak RSS (VmHWM) of a child in MB, sampled until it exits, and its wall time; `readMb` is
 * the peak when the child printed `mark` on stderr (for build-index: the end of reading and
 * embedding the source, before the HNSW build).
 */
function measured(
  args: string[],
  env: Record<string, string>,
  mark?: RegExp,
): Promise<{ code: number | null; peakMb: number; readMb: number | null; readSeconds: number | null; seconds: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env } });
    let peak = 0;
    let readMb: number | null = null;
    let readSeconds: number | null = null;
    let stdout = '';
    let stderr = '';
    const sample = (): void => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m !== null) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited between samples
      }
    };
    const timer = setInterval(sample, 50);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
      if (mark !== undefined && readMb === null && mark.test(d.toString())) {
        sample();
        readMb = peak;
        readSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      }
    });
    child.on('error', reject);
    child.on('exit', () => sample());
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, peakMb: peak, readMb, readSeconds, seconds: Number(process.hrtime.bigint() - t0) / 1e9, stdout, stderr });
    });
  });
}

try {
  const refs = join(dir, 'refs.jsonl');
  await writeReferences(refs, N);
  const fileMb = statSync(refs).size / 2 ** 20;
  console.log(`generated ${N} lines (D=${DIM}, ${LABELS} labels) in ${refs}: ${fileMb.toFixed(1)} MiB`);

  const env = { QUALM_MODEL_PATH: modelPath, QUALM_BUNDLE_DIR: join(dir, 'bundles'), QUALM_LOG_LEVEL: 'warn' };
  // The fixed cost: the same command on the first 1,000 lines (node, onnxruntime, the build threads).
  const small = join(dir, 'refs-1k.jsonl');
  await writeReferences(small, 1000);
  const fixed = await measured([BIN, 'build-index', '--references', small, '--k', values.k], env);
  if (fixed.code !== 0) throw new Error(`build-index on 1,000 lines exited with ${fixed.code}:\n${fixed.stderr}`);
  console.log(`build-index --references on 1,000 lines: peak RSS ${fixed.peakMb.toFixed(0)} MiB, ${fixed.seconds.toFixed(1)} s`);
  const build = await measured([BIN, 'build-index', '--references', refs, '--k', values.k], env, /embedded \d+/);
  if (build.code !== 0) throw new Error(`build-index exited with ${build.code}:\n${build.stderr}`);
  const summary = JSON.parse(build.stdout.trim().split('\n').pop() as string) as { count: number; labels: string[] };
  console.log(`build-index --references: ${summary.count} references, ${summary.labels.length} labels, peak RSS ${build.peakMb.toFixed(0)} MiB, ${build.seconds.toFixed(1)} s`);
  console.log(`  of which reading and embedding the file: peak RSS ${build.readMb?.toFixed(0) ?? '?'} MiB at ${build.readSeconds?.toFixed(1) ?? '?'} s (before the HNSW build)`);

  // The baseline: the same file held as JSON (one JSON.parse per line, all kept), nothing else.
  const holdScript = `const fs=require('node:fs');const t=fs.readFileSync(${JSON.stringify(refs)},'utf8');const a=[];let s=0;for(;;){const e=t.indexOf('\\n',s);if(e<0)break;a.push(JSON.parse(t.slice(s,e)));s=e+1;}console.log(a.length);`;
  const hold = await measured(['--max-old-space-size=16384', '-e', holdScript], {});
  if (hold.code !== 0) throw new Error(`the JSON baseline exited with ${hold.code}:\n${hold.stderr}`);
  console.log(`baseline, the file held as JSON (JSON.parse of every line, kept): peak RSS ${hold.peakMb.toFixed(0)} MiB, ${hold.seconds.toFixed(1)} s`);
  console.log(
    JSON.stringify({
      n: N,
      dim: DIM,
      file_mb: Number(fileMb.toFixed(1)),
      build_peak_rss_mb: Math.round(build.peakMb),
      build_seconds: Number(build.seconds.toFixed(1)),
      build_read_peak_rss_mb: build.readMb === null ? null : Math.round(build.readMb),
      build_read_seconds: build.readSeconds === null ? null : Number(build.readSeconds.toFixed(1)),
      build_1k_peak_rss_mb: Math.round(fixed.peakMb),
      json_peak_rss_mb: Math.round(hold.peakMb),
      ratio: Number((build.peakMb / hold.peakMb).toFixed(3)),
    }),
  );
} finally {
  if (values.keep !== true) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
