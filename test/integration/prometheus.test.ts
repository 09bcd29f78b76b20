// deploy/ against a real Prometheus: the repo's scrape config and alert rules, pointed at a real
// worker on the real broker, with traffic that creates every condition a panel shows (flags,
// dead letters, drift, a bundle swap and a refused bundle). Every dashboard query and every
// alert expression then goes through Prometheus's HTTP API.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { parse, stringify } from 'yaml';
import { sampleMix } from '../../src/cli/sample-mix.js';
import { loadConfig } from '../../src/config/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist, loadMnist } from '../../src/datasets/index.js';
import { startLocalKafka, type LocalKafka } from '../../src/local-kafka/index.js';
import { buildSliceBundle, embedSlice, publishCorruptBundle, type SliceRefs } from '../helpers/bundles.js';
import { createTopics, produce, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../helpers/kafka.js';
import { PrometheusProcess, type Series } from '../helpers/prometheus.js';
import { WorkerProcess } from '../helpers/worker-process.js';
import { alertRules, boolified, dashboardQueries, loadDashboard, panelVariables } from '../../scripts/deploy-checks/observability.js';

const CONFIG = loadConfig(process.env);
const ROOT = resolve(import.meta.dirname, '../..');
const live = mkdtempSync(join(tmpdir(), 'qualm-prom-live-'));
const staging = mkdtempSync(join(tmpdir(), 'qualm-prom-staging-'));
let broker: LocalKafka;
let kafka: Kafka;
let refs: SliceRefs;
let worker: WorkerProcess | undefined;
let prometheus: PrometheusProcess | undefined;

before(async () => {
  broker = await startLocalKafka();
  kafka = testKafka(broker.brokers);
  refs = await embedSlice(CONFIG.modelPath);
});

after(async () => {
  await worker?.stop('SIGKILL').catch(() => undefined);
  await prometheus?.stop();
  await broker?.stop();
  rmSync(live, { recursive: true, force: true });
  rmSync(staging, { recursive: true, force: true });
});

/** The repo's prometheus.yml, scraping `target` every second, with the repo's rules evaluated every second. */
function prometheusConfig(target: string): string {
  const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = config.rule_files.map((f) => join(ROOT, 'deploy/prometheus', f));
  const job = config.scrape_configs.find((j) => j.job_name === 'qualm');
  assert.ok(job, 'deploy/prometheus/prometheus.yml has the qualm job');
  job.static_configs = [{ targets: [target] }];
  return stringify(config);
}

function traffic(n: number): Message[] {
  const mix = sampleMix(loadFashionMnist('t10k', [SLICE_FASHION_MNIST_DIR]), loadMnist(), {
    oodShare: 0.3,
    malformedShare: 0.05,
    seed: 7,
    oversizeBytes: CONFIG.maxMessageBytes,
    idPrefix: 'prom',
  });
  return Array.from({ length: n }, () => {
    const m = mix.next().value as { key: string | null; value: string };
    return { key: m.key, value: m.value };
  });
}

const hasFinitePoint = (series: readonly Series[]): boolean => series.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));

test('every dashboard query and every alert expression returns series from a real Prometheus scraping a real worker', { timeout: 300_000 }, async () => {
  const topics = uniqueWorkerTopics();
  await createTopics(kafka, [topics.input, topics.review, topics.scores, topics.dlq]);
  const v1 = await buildSliceBundle(refs, live, 0, 3000, { version: 'v1', densityWeight: CONFIG.densityWeight });
  worker = await WorkerProcess.start({
    ...workerTopicEnv(broker.brokers, topics),
    QUALM_BUNDLE_DIR: live,
    QUALM_MODEL_PATH: CONFIG.modelPath,
    QUALM_REFRESH_INTERVAL_MS: '300',
    QUALM_DRIFT_WINDOW: '200',
  });
  const w = worker;
  prometheus = await PrometheusProcess.start(prometheusConfig(`127.0.0.1:${w.metricsPort}`));
  const prom = prometheus;
  const started = Math.floor(Date.now() / 1000) - 1;
  // Prometheus starts scraping only after its first service-discovery update (about 5 s):
  // traffic before that would leave counters that appear already incremented, with no increase.
  await waitFor(async () => (await prom.query('up{job="qualm"} == 1')).length === 1, 'the first scrape of the worker', 30_000);

  // Traffic in two halves around a bundle swap, then a corrupted bundle the worker refuses.
  const pool = traffic(1600);
  let sent = 0;
  const send = async (until: number): Promise<void> => {
    while (sent < until) {
      await produce(kafka, topics.input, pool.slice(sent, sent + 40));
      sent += 40;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await send(800);
  const v2 = await buildSliceBundle(refs, live, 3000, 6000, { version: 'v2', densityWeight: CONFIG.densityWeight });
  await waitFor(async () => /^qualm_bundle_refresh_total\{outcome="swapped"\} 1$/m.test(await w.metrics()), `${v1} -> ${v2} swap`);
  await publishCorruptBundle(refs, live, staging, 'v3', CONFIG.densityWeight);
  await waitFor(async () => /^qualm_bundle_refresh_total\{outcome="refused"\} 1$/m.test(await w.metrics()), 'v3 refused');
  await send(pool.length);

  // Prometheus has scraped the worker's last state, and has evaluated every rule without error.
  await waitFor(async () => {
    const r = await prom.query('sum(qualm_messages_consumed_total{job="qualm"})');
    return Number(r[0]?.values[0]?.[1]) === sent;
  }, `prometheus sees ${sent} consumed`, 90_000);
  const rules = alertRules(ROOT);
  assert.ok(rules.length >= 8, `${rules.length} alert rules`);
  await waitFor(async () => {
    const data = await prom.api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('rules');
    const loaded = data.groups.flatMap((g) => g.rules);
    const bad = loaded.filter((r) => r.health !== 'ok');
    if (bad.some((r) => r.health === 'err')) throw new Error(`rule evaluation failed: ${JSON.stringify(bad)}`);
    return loaded.length === rules.length && bad.length === 0;
  }, 'every alert rule loaded and evaluated', 30_000);

  const end = Math.ceil(Date.now() / 1000);
  const dashboard = loadDashboard(ROOT);
  // The worker variable: Grafana asks for the label values its definition names.
  const variables = panelVariables(dashboard);
  const instanceVar = variables.find((v) => v.name === 'instance');
  assert.ok(instanceVar, 'the dashboard has an instance variable');
  const res = await fetch(`${prom.url}/api/v1/label/${instanceVar.label}/values?${new URLSearchParams({ 'match[]': instanceVar.metric }).toString()}`);
  const instances = ((await res.json()) as { data: string[] }).data;
  assert.deepEqual(instances, [`127.0.0.1:${w.metricsPort}`]);

  const queries = dashboardQueries(dashboard);
  assert.ok(queries.length >= 20, `${queries.length} dashboard queries`);
  const empty: string[] = [];
  // With the variable on "All" (its default) and on the one worker.
  for (const instance of [instanceVar.allValue, instances[0]?.replaceAll('.', '\\\\.') ?? '']) {
    for (const q of queries) {
      const expr = q.expr.replaceAll('$instance', instance).replaceAll('$__rate_interval', '10s');
      const series = await prom.queryRange(expr, started, end, 2);
      if (!hasFinitePoint(series)) empty.push(`${q.where} [instance=${instance}]: ${expr}`);
    }
  }
  assert.deepEqual(empty, [], 'dashboard queries without data');

  const silent: string[] = [];
  for (const rule of rules) {
    await prom.query(rule.expr); // the expression as written evaluates (throws with Prometheus's error otherwise)
    const series = await prom.query(boolified(rule.expr));
    if (series.length === 0) silent.push(`${rule.alert}: ${boolified(rule.expr)}`);
  }
  assert.deepEqual(silent, [], 'alert expressions whose inputs have no series');

  // The drift panels compare like with like: both sources present, and the stream (30% MNIST
  // digits) well beyond the references on both the out-of-distribution share and uncertainty.
  const value = async (expr: string): Promise<number> => Number((await prom.query(expr))[0]?.values[0]?.[1]);
  const refOod = await value('max(qualm_drift_ood_ratio{source="reference"})');
  const streamOod = await value('max(qualm_drift_ood_ratio{source="stream"})');
  assert.ok(refOod > 0 && refOod < 0.02, `reference ood ratio ${refOod}`);
  assert.ok(streamOod > 3 * refOod, `stream ood ratio ${streamOod} vs reference ${refOod}`);
  const refQ9 = await value('max(qualm_drift_uncertainty{source="reference", q="0.9"})');
  const streamQ9 = await value('max(qualm_drift_uncertainty{source="stream", q="0.9"})');
  assert.ok(Math.abs(refQ9 - 0.9) < 0.01, `reference uncertainty q0.9 ${refQ9}`);
  assert.ok(streamQ9 > 0.97, `stream uncertainty q0.9 ${streamQ9}`);
  assert.deepEqual(await w.stop('SIGTERM'), { code: 0, signal: null });
});
