/**
 * Offline check of what the worker's default flag rules do on the demo data: builds a bundle
 * over Fashion-MNIST train in a temp dir exactly as build-index does (the fitted combination
 * and Gaussian), scores all of Fashion-MNIST test (in distribution) and the 10k MNIST digits
 * (out of distribution), and prints the share of each beyond the out-of-distribution cut, the
 * share at several uncertainty thresholds, and the share the default rules (threshold plus
 * the out-of-distribution rule) flag, through the worker's Scorer. The method's evaluation is `qualm evaluate`.
 * Run: node --import tsx scripts/flag-rates.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/index.js';
import { loadFashionMnist, loadMnist } from '../src/datasets/index.js';
import { OnnxEncoder } from '../src/encoder/index.js';
import { fitCombination } from '../src/eval/index.js';
import { buildBundle, loadCurrentBundle } from '../src/index/index.js';
import { Scorer } from '../src/scorer/index.js';
import { oodPercentileOf, referenceScorer } from '../src/scoring/index.js';
import { createPolicy } from '../src/stream/index.js';

/** P(score of a random positive > score of a random negative), ties counting one half. */
function auroc(neg: readonly number[], pos: readonly number[]): number {
  const sorted = [...pos].sort((a, b) => a - b);
  let sum = 0;
  for (const u of neg) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      if ((sorted[m] as number) <= u) lo = m + 1;
      else hi = m;
    }
    let eq = lo;
    while (eq > 0 && sorted[eq - 1] === u) eq--;
    sum += (sorted.length - lo + 0.5 * (lo - eq)) / sorted.length;
  }
  return sum / neg.length;
}

const config = loadConfig(process.env);
const dir = mkdtempSync(join(tmpdir(), 'qualm-flag-rates-'));
try {
  const enc = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  const train = loadFashionMnist('train');
  const test = loadFashionMnist('t10k');
  const mnist = loadMnist();
  const [ztr, zte, zmn] = [await enc.embedAll(train.pixels, train.n, 512), await enc.embedAll(test.pixels, test.n, 512), await enc.embedAll(mnist.pixels, mnist.n, 512)];
  const dim = enc.dim;
  await enc.close();
  const opts = { densityWeight: config.densityWeight, numLabels: train.labelNames.length };
  await buildBundle(dir, {
    embeddings: ztr,
    dim,
    ids: Array.from({ length: train.n }, (_, i) => `fashion-mnist/train#${i}`),
    labels: Array.from(train.labels),
    labelNames: train.labelNames,
    model: { name: 'flag-rates', version: '0', sha256: '0'.repeat(64) },
    source: { origin: train.origin },
    k: config.k,
    densityWeight: config.densityWeight,
    referenceScore: referenceScorer(opts),
    fitScoring: (loo, signal) => fitCombination(loo, {}, signal),
  });
  const snap = await loadCurrentBundle(dir, { efSearch: config.efSearch });
  // The worker's own Scorer on the embeddings (embedding inputs skip the encoder), with a fresh
  // set of the configured rules (QUALM_FLAG_POLICY, QUALM_OOD_RULE, ...) per set.
  const score = async (z: Float32Array, n: number, name: string) => {
    const scorer = new Scorer({ embedder: enc, snapshot: () => snap, policy: createPolicy(config), batch: config.inferenceBatch });
    const items = Array.from({ length: n }, (_, i) => ({
      sample: { id: `${name}#${i}`, input: { kind: 'embedding' as const, values: z.subarray(i * dim, (i + 1) * dim) }, meta: undefined },
      source: null,
    }));
    return (await scorer.score(items)).map((s) => {
      if (!s.ok) throw new Error(`${s.sample.id}: ${s.code} ${s.message}`);
      return { ...s.score, flagged: s.decision !== null };
    });
  };
  const st = await score(zte, test.n, 'fashion-mnist/t10k');
  const sm = await score(zmn, mnist.n, 'mnist');
  const share = (s: typeof st, pick: (x: (typeof st)[number]) => boolean): number => Math.round((s.filter(pick).length / s.length) * 10000) / 10000;
  const rate = (s: typeof st, t: number): number => share(s, (x) => x.uncertainty >= t);
  console.log(
    JSON.stringify({
      data: train.origin,
      k: config.k,
      fitted_combination: snap.combination !== undefined,
      auroc_uncertainty: Math.round(auroc(st.map((s) => s.uncertainty), sm.map((s) => s.uncertainty)) * 10000) / 10000,
      auroc_mean_knn_distance: Math.round(auroc(st.map((s) => s.signals.meanKnnDistance), sm.map((s) => s.signals.meanKnnDistance)) * 10000) / 10000,
      auroc_ood_measure: Math.round(auroc(st.map((s) => oodPercentileOf(s.signals)), sm.map((s) => oodPercentileOf(s.signals))) * 10000) / 10000,
      // The drift gauge's out-of-distribution share and the OOD rule's cut: oodPercentileOf at or above QUALM_OOD_PERCENTILE.
      beyond_ood_percentile: {
        ood_percentile: config.oodPercentile,
        fashion_mnist_test: share(st, (x) => oodPercentileOf(x.signals) >= config.oodPercentile),
        mnist: share(sm, (x) => oodPercentileOf(x.signals) >= config.oodPercentile),
      },
      uncertainty_at_least: [0.8, 0.85, 0.9, 0.95].map((t) => ({ threshold: t, fashion_mnist_test: rate(st, t), mnist: rate(sm, t) })),
      // What the worker's configured rules (QUALM_FLAG_POLICY, QUALM_OOD_RULE, ...) flag; a fresh rule set per set.
      flagged_by_rules: {
        rules: createPolicy(config).name,
        fashion_mnist_test: share(st, (x) => x.flagged),
        mnist: share(sm, (x) => x.flagged),
      },
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
