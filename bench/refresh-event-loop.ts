/**
 * How long does loading a large bundle block the event loop? A refresh must stay off the hot
 * path: the worker keeps consuming, heartbeating and serving /metrics while the next version
 * loads. This generates (once, cached) a bundle of N synthetic references, then loads it
 * (from a local store, and through an HTTP store served by a loopback static server) while
 * a 1 ms timer and perf_hooks.monitorEventLoopDelay watch the loop.
 *
 *   node --import tsx bench/refresh-event-loop.ts [--count 200000] [--dim 128] [--dir .cache/bench-bundles]
 *
 * Prints the load time and the longest event-loop block of each run: wall time between two
 * ticks of the timer, and (Linux) the main thread's own CPU time in that gap, which leaves out
 * waiting for a CPU on a busy machine.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import hnswlib from 'hnswlib-node';
import { seededRandom } from '../src/cli/sample-mix.js';
import {
  HttpBundleStore,
  IDS_FILE,
  INDEX_FILE,
  LABELS_FILE,
  LocalBundleStore,
  MANIFEST_FILE,
  RADII_FILE,
  loadBundle,
  movePointer,
  sha256File,
  type BundleManifest,
  type BundleStore,
} from '../src/index/index.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '200000' }, dim: { type: 'string', default: '128' }, dir: { type: 'string', default: '.cache/bench-bundles' } },
});
const count = Number(values.count);
const dim = Number(values.dim);
const storeDir = join(values.dir, `n${count}-d${dim}`);
const version = `bench-${count}-${dim}`;
const MODEL_SHA = 'b'.repeat(64);

/** Writes a valid bundle straight from synthetic vectors (no leave-one-out pass: its statistics are placeholders). */
async function generate(): Promise<void> {
  if (existsSync(join(storeDir, version, MANIFEST_FILE))) return;
  const t0 = Date.now();
  const dir = join(storeDir, version);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const rnd = seededRandom(7);
  const index = new hnswlib.HierarchicalNSW('cosine', dim);
  index.initIndex(count, 16, 40, 100);
  const v = new Array<number>(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) v[j] = rnd() - 0.5;
    index.addPoint(v, i);
  }
  await index.writeIndex(join(dir, INDEX_FILE));
  await writeFile(join(dir, IDS_FILE), JSON.stringify(Array.from({ length: count }, (_, i) => `fm-train#${i}`)));
  await writeFile(join(dir, LABELS_FILE), JSON.stringify(Array.from({ length: count }, (_, i) => i % 10)));
  const radii = new Float32Array(count).map(() => 0.1 + rnd() * 0.2);
  await writeFile(join(dir, RADII_FILE), Buffer.from(radii.buffer));
  const q = Array.from({ length: 1001 }, (_, i) => i / 1000);
  const files: BundleManifest['files'] = {};
  for (const f of [INDEX_FILE, IDS_FILE, LABELS_FILE, RADII_FILE]) {
    files[f] = { sha256: await sha256File(join(dir, f)), bytes: (await stat(join(dir, f))).size };
  }
  const manifest: BundleManifest = {
    format_version: 1,
    version,
    created_at: new Date().toISOString(),
    model: { name: 'bench', version: '1', sha256: MODEL_SHA, dim },
    metric: 'cosine',
    count,
    hnsw: { m: 16, ef_construction: 40, random_seed: 100 },
    labels: { names: Array.from({ length: 10 }, (_, i) => `c${i}`) },
    reference_stats: { k: 20, loo_mean_knn_quantiles: q, loo_kth_knn_quantiles: q, loo_relative_density_quantiles: q, loo_score_quantiles: q },
    scoring: { density_weight: 0.9 },
    source: { bench: 'refresh-event-loop' },
    files,
  };
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  await movePointer(storeDir, version);
  console.log(`generated ${count} x ${dim} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

interface Blocks {
  maxMs: number;
  /** Longest stall counting only the main thread's own time on a CPU (Linux), so that waits for a busy machine's CPU do not count. */
  maxCpuMs: number | undefined;
  p99Ms: number;
  over50: number;
}

/** Nanoseconds the main thread has spent on a CPU (Linux /proc schedstat), or undefined elsewhere. */
function mainThreadCpuNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

/** Runs `work` while watching the event loop; returns its duration and the longest stall. */
async function watched(work: () => Promise<unknown>): Promise<{ ms: number; blocks: Blocks }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let lastCpu = mainThreadCpuNs();
  let maxGap = 0;
  let maxCpu: number | undefined;
  let over50 = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    const cpu = mainThreadCpuNs();
    const gap = now - last - 1;
    if (gap > maxGap) maxGap = gap;
    if (gap > 50) over50++;
    if (cpu !== undefined && lastCpu !== undefined) maxCpu = Math.max(maxCpu ?? 0, (cpu - lastCpu) / 1e6);
    last = now;
    lastCpu = cpu;
  }, 1);
  h.enable();
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  h.disable();
  clearInterval(tick);
  return { ms, blocks: { maxMs: Math.max(maxGap, h.max / 1e6), maxCpuMs: maxCpu, p99Ms: h.percentile(99) / 1e6, over50 } };
}

function serveStatic(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')));
    if (!path.startsWith(normalize(root))) {
      res.writeHead(403).end();
      return;
    }
    stat(path).then(
      (s) => {
        res.writeHead(200, { 'content-length': s.size });
        createReadStream(path).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      resolve({ url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

function report(what: string, r: { ms: number; blocks: Blocks }): void {
  console.log(
    `${what.padEnd(34)} ${(r.ms / 1000).toFixed(2).padStart(6)} s   longest event-loop block ${r.blocks.maxMs.toFixed(1).padStart(6)} ms (on-CPU ${r.blocks.maxCpuMs?.toFixed(1) ?? 'n/a'} ms)   p99 delay ${r.blocks.p99Ms.toFixed(1)} ms   stalls > 50 ms: ${r.blocks.over50}`,
  );
}

async function loadThrough(store: BundleStore): Promise<void> {
  const v = await store.readPointer();
  if (v === undefined) throw new Error('no pointer');
  const root = await store.materialize(v);
  await loadBundle(root, v, { efSearch: 400, expectModelSha256: MODEL_SHA });
}

await generate();
const manifest = JSON.parse(await readFile(join(storeDir, version, MANIFEST_FILE), 'utf8')) as BundleManifest;
console.log(`bundle ${version}: ${count} references, dim ${dim}; ${((manifest.files[INDEX_FILE]?.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB index`);
report('load from a local store', await watched(() => loadThrough(new LocalBundleStore(storeDir))));
const server = await serveStatic(storeDir);
const cache = join(values.dir, `cache-${process.pid}`);
try {
  const store = new HttpBundleStore(server.url, cache);
  report('download + load (HTTP store)', await watched(() => loadThrough(store)));
  report('load again (HTTP store, cached)', await watched(() => loadThrough(store)));
} finally {
  await server.close();
  await rm(cache, { recursive: true, force: true });
}
