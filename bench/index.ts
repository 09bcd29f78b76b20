// npm run bench:index [-- --n 1000000 --dim 128 --queries 1000 --seed 1 --threads T --shards S]
//
// Builds a reference bundle of --n synthetic references through the real buildBundle (threads
// and shards as the CLI would use them unless given), loads it through the real loader, and
// measures recall@10 of IndexSnapshot.search against exact brute force (cosine) on --queries
// held-out points, and the latency of single queries. Baselines measured in the same run:
//   - a single-thread, single-shard build of a subsample (--baseline-n, default min(n, 20000)):
//     the parallel build's insert and leave-one-out rates are printed as ratios to its rates
//     (conservative: HNSW insert cost grows with log n, and the subsample is smaller);
//   - raw hnswlib searchKnn on the same shard files, one call per shard: qualm's search
//     (merge, ids, labels, radii) is printed as a ratio to it.
// Synthetic data: a mixture of C = 100 Gaussian clusters on the unit sphere. Centres are
// uniform on the sphere; a point is normalise(centre + s * g), g ~ N(0, I_dim / dim), with a
// spread s drawn per cluster in [0.3, 0.9]: clusters of different densities that overlap a
// little, like an encoder's embedding space. Queries come from the same mixture and are not
// references. Last line (JSON):
//   {"n":N,"dim":D,"build_s":b,"cores_used":c,"recall_at_10":r,"query_ms_p50":q50,"query_ms_p99":q99,"rss_bytes":m,"raw_vector_bytes":v}
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import hnswlib from 'hnswlib-node';
import { buildBundle, loadBundle, shardFile, type BuildPhase, type BuildResult } from '../src/index/index.js';
import { gaussian, seededRandom } from '../src/util/random.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '128' },
    queries: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string' },
    shards: { type: 'string' },
    'baseline-n': { type: 'string' },
  },
});
const N = Number(values.n);
const DIM = Number(values.dim);
const QUERIES = Number(values.queries);
const SEED = Number(values.seed);
const THREADS = values.threads === undefined ? availableParallelism() : Number(values.threads);
/** Default: the builder's (one index). */
const SHARDS = values.shards === undefined ? 1 : Number(values.shards);
const BASELINE_N = Math.min(N, values['baseline-n'] === undefined ? 20_000 : Number(values['baseline-n']));
const K = 10;
const CLUSTERS = 100;
for (const [name, v] of Object.entries({ n: N, dim: DIM, queries: QUERIES, threads: THREADS, shards: SHARDS, 'baseline-n': BASELINE_N })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
}

/** The mixture: centres and spreads from the seed; rows drawn from `stream` into `out`. */
function mixture(seed: number): (out: Float32Array, rows: number, stream: number) => void {
  const rnd = seededRandom(seed);
  const centres = new Float32Array(CLUSTERS * DIM);
  const spread = new Float64Array(CLUSTERS);
  for (let c = 0; c < CLUSTERS; c++) {
    let s = 0;
    for (let d = 0; d < DIM; d++) s += (centres[c * DIM + d] = gaussian(rnd)) ** 2;
    for (let d = 0; d < DIM; d++) centres[c * DIM + d] = (centres[c * DIM + d] as number) / Math.sqrt(s);
    spread[c] = 0.3 + 0.6 * rnd();
  }
  return (out, rows, stream) => {
    const r = seededRandom(seed * 7919 + stream);
    const scale = 1 / Math.sqrt(DIM);
    for (let i = 0; i < rows; i++) {
      const c = Math.floor(r() * CLUSTERS);
      const sd = (spread[c] as number) * scale;
      let s = 0;
      for (let d = 0; d < DIM; d++) s += (out[i * DIM + d] = (centres[c * DIM + d] as number) + sd * gaussian(r)) ** 2;
      const inv = 1 / Math.sqrt(s);
      for (let d = 0; d < DIM; d++) out[i * DIM + d] = (out[i * DIM + d] as number) * inv;
    }
  };
}

const draw = mixture(SEED);
// In shared memory, so that the build threads read the references without a copy.
const refs = new Float32Array(new SharedArrayBuffer(N * DIM * 4));
draw(refs, N, 1);
const queries = new Float32Array(QUERIES * DIM);
draw(queries, QUERIES, 2);
const ids = Array.from({ length: N }, (_, i) => `r${i}`);
const root = mkdtempSync(join(tmpdir(), 'qualm-bench-index-'));
const model = { name: 'bench', version: '1', sha256: 'b'.repeat(64) };

interface Timed {
  res: BuildResult;
  wall: number;
  cpu: number;
  phase: Map<BuildPhase, number>;
}

/** One real build, timing each phase from the progress callbacks. */
async function timedBuild(dir: string, n: number, threads: number, shards: number): Promise<Timed> {
  const phase = new Map<BuildPhase, number>();
  let current: BuildPhase | undefined;
  let since = 0;
  let lastLog = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await buildBundle(
    dir,
    {
      embeddings: n === N ? refs : refs.slice(0, n * DIM),
      dim: DIM,
      ids: ids.slice(0, n),
      labels: null,
      labelNames: null,
      model,
      source: { bench: 'index' },
      k: K,
      densityWeight: 1,
      hnsw: { m: 16, efConstruction: 200, randomSeed: 100, shards },
    },
    {
      threads,
      onProgress: (p, done, total) => {
        const now = performance.now();
        if (p !== current) {
          if (current !== undefined) phase.set(current, (phase.get(current) ?? 0) + (now - since) / 1000);
          current = p;
          since = now;
        }
        if (n === N && now - lastLog > 30_000) {
          lastLog = now;
          process.stderr.write(`  ${p} ${done}/${total}\n`);
        }
      },
    },
  );
  const wall = (performance.now() - t0) / 1000;
  if (current !== undefined) phase.set(current, (phase.get(current) ?? 0) + (performance.now() - since) / 1000);
  const c = process.cpuUsage(cpu0);
  return { res, wall, cpu: (c.user + c.system) / 1e6, phase };
}

const fmt = (x: number, d = 2): string => x.toFixed(d);

// Baseline, same run: one thread, one shard, on a subsample.
const base = await timedBuild(join(root, 'baseline'), BASELINE_N, 1, 1);
const baseInsert = BASELINE_N / (base.phase.get('insert') ?? NaN);
const baseLoo = BASELINE_N / (base.phase.get('leave-one-out') ?? NaN);
console.log(`baseline: 1 thread, 1 shard, n=${BASELINE_N}: ${fmt(base.wall)} s, insert ${fmt(baseInsert, 0)} rows/s, leave-one-out ${fmt(baseLoo, 0)} rows/s`);
rmSync(join(root, 'baseline'), { recursive: true, force: true });

const full = await timedBuild(join(root, 'full'), N, THREADS, SHARDS);
const insertRate = N / (full.phase.get('insert') ?? NaN);
const looRate = N / (full.phase.get('leave-one-out') ?? NaN);
const coresUsed = full.cpu / full.wall;
console.log(`build: ${THREADS} threads, ${SHARDS} shards, n=${N}, dim=${DIM}: ${fmt(full.wall)} s, ${fmt(coresUsed)} cores used`);
console.log(
  `  phases (s): ${[...full.phase].map(([p, s]) => `${p} ${fmt(s)}`).join(', ')}; insert ${fmt(insertRate, 0)} rows/s (x${fmt(insertRate / baseInsert)} the baseline), leave-one-out ${fmt(looRate, 0)} rows/s (x${fmt(looRate / baseLoo)})`,
);

const loadStart = performance.now();
const snap = await loadBundle(join(root, 'full'), full.res.version, { efSearch: 100 });
const files = full.res.manifest.files;
const indexBytes = Object.entries(files)
  .filter(([f]) => f.endsWith('.hnsw'))
  .reduce((s, [, f]) => s + f.bytes, 0);
console.log(`load + verify: ${fmt((performance.now() - loadStart) / 1000)} s; ${snap.shards} shard(s), index files ${fmt(indexBytes / 2 ** 20, 0)} MiB`);

// Exact top-10 of every query by brute force (dot products of unit vectors).
const bruteStart = performance.now();
const truth: Set<number>[] = [];
const best = new Float64Array(K);
const bestRow = new Int32Array(K);
for (let q = 0; q < QUERIES; q++) {
  best.fill(-Infinity);
  const qo = q * DIM;
  for (let i = 0; i < N; i++) {
    const io = i * DIM;
    let s = 0;
    for (let d = 0; d < DIM; d++) s += (queries[qo + d] as number) * (refs[io + d] as number);
    if (s <= (best[K - 1] as number)) continue;
    let j = K - 1;
    while (j > 0 && (best[j - 1] as number) < s) {
      best[j] = best[j - 1] as number;
      bestRow[j] = bestRow[j - 1] as number;
      j--;
    }
    best[j] = s;
    bestRow[j] = i;
  }
  truth.push(new Set(bestRow));
}
console.log(`brute force: ${fmt((performance.now() - bruteStart) / 1000)} s for ${QUERIES} queries`);

const qrows = Array.from({ length: QUERIES }, (_, q) => queries.subarray(q * DIM, (q + 1) * DIM));
function measure(ef: number): { recall: number; p50: number; p99: number } {
  snap.setEfSearch(ef);
  let hits = 0;
  const lat: number[] = [];
  qrows.forEach((q, i) => {
    const t = performance.now();
    const got = snap.search(q, K);
    lat.push(performance.now() - t);
    const want = truth[i] as Set<number>;
    for (const id of got.ids) if (want.has(Number(id.slice(1)))) hits++;
  });
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number;
  return { recall: hits / (QUERIES * K), p50: pct(0.5), p99: pct(0.99) };
}

let chosen: { ef: number; recall: number; p50: number; p99: number } | undefined;
for (const ef of [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]) {
  measure(ef); // warm-up pass at this ef
  const m = measure(ef);
  console.log(`  ef ${ef}: recall@10 ${fmt(m.recall, 4)}, p50 ${fmt(m.p50, 3)} ms, p99 ${fmt(m.p99, 3)} ms`);
  if (m.recall >= 0.98) {
    chosen = { ef, ...m };
    break;
  }
}
if (chosen === undefined) throw new Error('no ef up to 512 reaches recall@10 0.98');
console.log(`chosen ef: ${chosen.ef} (the smallest with recall@10 >= 0.98)`);

// Raw hnswlib on the same shard files at the same ef: the floor of qualm's search.
const shards = snap.shards;
const raw = await Promise.all(
  Array.from({ length: shards }, async (_, s) => {
    const index = new hnswlib.HierarchicalNSW('cosine', DIM);
    await index.readIndex(join(full.res.dir, shardFile(s, shards)));
    index.setEf(chosen.ef);
    return index;
  }),
);
const rawLat: number[] = [];
for (let pass = 0; pass < 2; pass++) {
  rawLat.length = 0;
  for (const q of qrows) {
    const t = performance.now();
    const arr = Array.from(q);
    for (const index of raw) index.searchKnn(arr, K);
    rawLat.push(performance.now() - t);
  }
}
rawLat.sort((a, b) => a - b);
const rawP50 = rawLat[Math.floor(0.5 * rawLat.length)] as number;
console.log(`raw hnswlib searchKnn (${shards} call(s) per query): p50 ${fmt(rawP50, 3)} ms; qualm search p50 is x${fmt(chosen.p50 / rawP50)} that`);

const rss = process.resourceUsage().maxRSS * 1024;
const rawBytes = N * DIM * 4;
console.log(`memory: peak RSS ${fmt(rss / 2 ** 20, 0)} MiB; raw vectors ${fmt(rawBytes / 2 ** 20, 0)} MiB (x${fmt(rss / rawBytes)}); index files ${fmt(indexBytes / 2 ** 20, 0)} MiB`);
rmSync(root, { recursive: true, force: true });

console.log(
  JSON.stringify({
    n: N,
    dim: DIM,
    build_s: Number(fmt(full.wall)),
    cores_used: Number(fmt(coresUsed)),
    recall_at_10: Number(fmt(chosen.recall, 4)),
    query_ms_p50: Number(fmt(chosen.p50, 3)),
    query_ms_p99: Number(fmt(chosen.p99, 3)),
    rss_bytes: rss,
    raw_vector_bytes: rawBytes,
  }),
);
