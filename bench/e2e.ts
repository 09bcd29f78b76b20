// npm run bench:e2e [-- --n 50000 --parts-n 20000 --latency-s 60 --partitions 1 --rate R]
//
// The worker end to end on the real broker, against the bound its own parts set, all measured
// in one run on this machine (the model QUALM_MODEL_PATH, the bundle QUALM_BUNDLE_DIR names,
// QUALM_INFERENCE_BATCH, QUALM_INTRA_OP_THREADS, QUALM_EF_SEARCH as the worker reads them):
//
//   1. The parts alone, each as CPU time per message (this process's, plus the broker's for Kafka):
//      - onnx:  OnnxEncoder.embedAll over --parts-n Fashion-MNIST test rows in runs of the worker's batch;
//      - hnsw:  raw hnswlib searchKnn of those embeddings on the bundle's shard files at its k and ef;
//      - kafka: a kafkajs consumer that JSON.parses each input value, produces one record of the
//               worker's score-record size per input (idempotent, acks=all) and commits per batch.
//      onnx and hnsw are measured before the drain and again after the latency phase, and their
//      means are used (a shared host's speed drifts over minutes; the two bracket the drain).
//      bound_per_s = cores / (onnx + hnsw + kafka), cores = this machine's (2 here): what the
//      parts could do if nothing else ran and every core were busy with them.
//   2. Drain: --n messages of 784 features (4 decimals, ~3.4 KB, the demo's wire format) preloaded
//      on the input topic, then `qualm worker` as a child process; throughput from its own
//      qualm_messages_consumed_total between 10% and 100% of --n (start-up and JIT left out),
//      cores_used from its /proc CPU time over the same window, rss its peak (VmHWM).
//   3. Latency: input produced at half the drained rate (or --rate msg/s, to compare variants at
//      one load) for --latency-s, end to end from each input record's timestamp to its score
//      record's timestamp (the worker's produce time). The generator builds each image's
//      features text once (it shares the two cores with the worker and the broker), and the
//      phase prints the cores the worker (per thread, and their kernel part), the broker, this
//      process and the whole machine used, and when the slowest 1% were sent.
//
// Prints the per-stage breakdown (the worker's qualm_stage_duration_seconds per message; the
// stages overlap in a pipelined worker, so their sum can exceed the wall time per message).
// Last line: {"throughput_per_s":t,"bound_per_s":b,"ratio":r,"cores_used":c,"p50_ms":x,"p99_ms":y,"rss_bytes":m}
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import hnswlib from 'hnswlib-node';
import type { Message } from 'kafkajs';
import { loadConfig } from '../src/config/index.js';
import { loadFashionMnist, row } from '../src/datasets/index.js';
import { OnnxEncoder } from '../src/encoder/index.js';
import { MANIFEST_FILE, checkManifest, readPointer, shardFile } from '../src/index/index.js';
import { startLocalKafka } from '../src/local-kafka/index.js';
import { chunkByBytes, PRODUCE_CHUNK_BYTES } from '../src/transport/index.js';
import { createTopics, testKafka, uniqueWorkerTopics, waitFor, workerTopicEnv } from '../test/helpers/kafka.js';
import { WorkerProcess } from '../test/helpers/worker-process.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '50000' },
    'parts-n': { type: 'string', default: '20000' },
    'latency-s': { type: 'string', default: '60' },
    partitions: { type: 'string', default: '1' },
    rate: { type: 'string' },
  },
});
const N = Number(args.n);
const PARTS_N = Math.min(N, Number(args['parts-n']));
const LATENCY_S = Number(args['latency-s']);
const PARTITIONS = Number(args.partitions);
const CORES = availableParallelism();
const TICK_S = 0.01; // Linux USER_HZ

const config = loadConfig(process.env);
const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** utime + stime of a process in seconds, from /proc (Linux). */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_S;
}

/**
 * CPU seconds per thread name of a process (node names its threads: node main, libuv pool, V8
 * workers, worker threads), and under `sys:` + name the part of them spent in the kernel.
 */
function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : `${name}#${tid}`;
      out.set(key, (out.get(key) ?? 0) + (Number(fields[11]) + Number(fields[12])) * TICK_S);
      out.set(`sys:${key}`, (out.get(`sys:${key}`) ?? 0) + Number(fields[12]) * TICK_S);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Each thread's cores (CPU seconds per second) between two readings of threadCpuSeconds, leaving out the idle ones. */
function threadShares(from: Map<string, number>, to: Map<string, number>, seconds: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, cpu] of to) {
    const share = round((cpu - (from.get(name) ?? 0)) / seconds, 2);
    if (share >= 0.01) out[name] = share;
  }
  return out;
}

function procPeakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** The broker JVM's pid: the process whose command line names its data dir. */
function brokerPid(dataDir: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('java') && cmd.includes(dataDir)) return Number(d);
    } catch {
      // gone, or not ours
    }
  }
  throw new Error(`no broker process found for ${dataDir}`);
}

/** CPU seconds the whole machine has been busy (every core; /proc/stat, all but idle and iowait). */
function machineBusySeconds(): number {
  const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (cpu[3] as number) - (cpu[4] as number)) * TICK_S;
}

const selfCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round = (x: number, d = 0): number => Math.round(x * 10 ** d) / 10 ** d;

// --- data: Fashion-MNIST test rows as the demo's messages -------------------------------------
const images = loadFashionMnist('t10k');
// Each image's features as JSON text, built once: during the latency phase the load generator
// shares the worker's two cores, so it does as little per message as it can (an id and a concat).
const featureText: string[] = [];
const featuresOf = (i: number): string => {
  const at = i % images.n;
  let text = featureText[at];
  if (text === undefined) {
    const px = row(images, at);
    const parts: string[] = new Array<string>(px.length);
    for (let j = 0; j < px.length; j++) parts[j] = Number((px[j] as number).toFixed(4)).toString();
    text = featureText[at] = parts.join(',');
  }
  return text;
};
const valueOf = (i: number, id: string): string => `{"id":"${id}","input":{"features":[${featuresOf(i)}]}}`;

// --- the bundle ---------------------------------------------------------------------------------
const version = await readPointer(config.bundleDir);
if (version === undefined) throw new Error(`no bundle in ${config.bundleDir}: run \`npm run demo\` or \`qualm build-index\` first`);
const bundlePath = join(config.bundleDir, version);
const manifest = checkManifest(version, JSON.parse(readFileSync(join(bundlePath, MANIFEST_FILE), 'utf8')));
const k = manifest.reference_stats.k;
const ef = Math.max(config.efSearch, k);
log(`bundle ${version}: ${manifest.count} references, dim ${manifest.model.dim}, k ${k}, ef ${ef}; batch ${config.inferenceBatch}, intra-op threads ${config.intraOpThreads}; ${CORES} cores`);

// --- parts 1 and 2: ONNX and hnswlib, measured before the drain and again after it ------------------
// The machine's speed drifts by several per cent over minutes on a shared host; the bound uses the
// mean of the two measurements, which bracket the drain in time.
const shards = manifest.hnsw.shards ?? 1;
const indexes: hnswlib.HierarchicalNSW[] = [];
for (let s = 0; s < shards; s++) {
  const index = new hnswlib.HierarchicalNSW(manifest.metric, manifest.model.dim);
  await index.readIndex(join(bundlePath, shardFile(s, shards)));
  index.setEf(ef);
  indexes.push(index);
}
const dim = manifest.model.dim;

/** ONNX: CPU per embedding over PARTS_N rows in runs of the worker's batch; then hnswlib: CPU per query of those embeddings. */
async function modelParts(when: string): Promise<{ onnxCpuUs: number; hnswCpuUs: number }> {
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  const rows = new Float32Array(PARTS_N * encoder.inputDim);
  for (let i = 0; i < PARTS_N; i++) rows.set(row(images, i % images.n), i * encoder.inputDim);
  await encoder.embedAll(rows.slice(0, config.inferenceBatch * encoder.inputDim), config.inferenceBatch, config.inferenceBatch); // warm-up
  let c0 = selfCpu();
  let t0 = performance.now();
  const embeddings = await encoder.embedAll(rows.slice(), PARTS_N, config.inferenceBatch);
  const onnxCpuUs = ((selfCpu() - c0) / PARTS_N) * 1e6;
  const onnxRate = PARTS_N / ((performance.now() - t0) / 1000);
  await encoder.close();
  log(`onnx (${when}):  ${round(onnxCpuUs, 1)} µs CPU per embedding (${round(onnxRate)} emb/s)`);
  const query = (i: number): void => {
    const q = Array.from(embeddings.subarray(i * dim, (i + 1) * dim));
    for (const index of indexes) index.searchKnn(q, Math.min(k, index.getCurrentCount()));
  };
  for (let i = 0; i < 500; i++) query(i); // warm-up
  c0 = selfCpu();
  t0 = performance.now();
  for (let i = 0; i < PARTS_N; i++) query(i);
  const hnswCpuUs = ((selfCpu() - c0) / PARTS_N) * 1e6;
  const hnswRate = PARTS_N / ((performance.now() - t0) / 1000);
  log(`hnsw (${when}):  ${round(hnswCpuUs, 1)} µs CPU per query (${round(hnswRate)} q/s)`);
  return { onnxCpuUs, hnswCpuUs };
}
const partsBefore = await modelParts('before the drain');

// --- the broker and the preloaded topics -----------------------------------------------------------
const kafka = await startLocalKafka({ log: () => undefined });
const broker = brokerPid(kafka.dataDir);
const client = testKafka(kafka.brokers);
const topics = uniqueWorkerTopics();
const passIn = `${topics.input}-pass`;
const passOut = `${topics.input}-pass-out`;
await createTopics(client, [topics.input], PARTITIONS);
await createTopics(client, [topics.review, topics.scores, topics.dlq, passIn, passOut]);

const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
async function preload(topic: string, n: number, prefix: string): Promise<void> {
  const step = 2000;
  for (let start = 0; start < n; start += step) {
    const messages: Message[] = [];
    for (let i = start; i < Math.min(n, start + step); i++) messages.push({ key: `${prefix}-${i}`, value: valueOf(i, `${prefix}-${i}`) });
    for (const chunk of chunkByBytes(messages, PRODUCE_CHUNK_BYTES)) await producer.send({ topic, messages: chunk, acks: -1 });
  }
}
log(`preloading ${N} + ${PARTS_N} messages`);
await preload(topics.input, N, 'drain');
await preload(passIn, PARTS_N, 'pass');

// --- part 3: the worker drains N ----------------------------------------------------------------------
const worker = await WorkerProcess.start({
  ...workerTopicEnv(kafka.brokers, topics),
  QUALM_LOG_LEVEL: 'warn',
  QUALM_FROM_BEGINNING: 'true',
  QUALM_BUNDLE_DIR: config.bundleDir,
  QUALM_MODEL_PATH: config.modelPath,
  QUALM_REFRESH_INTERVAL_MS: '0',
});
const workerPid = worker.child.pid as number;
// A failed run must not leave the worker behind (the broker has its own watchdog).
process.on('exit', () => worker.child.kill('SIGKILL'));

/** The value of an unlabelled (or summed) counter in a Prometheus text exposition. */
function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface Sample {
  t: number;
  consumed: number;
  cpu: number;
  machine: number;
  broker: number;
  threads: Map<string, number>;
}
const samples: Sample[] = [];
await waitFor(
  async () => {
    const text = await worker.metrics();
    const s = { t: performance.now(), consumed: metricSum(text, 'qualm_messages_consumed_total'), cpu: procCpuSeconds(workerPid), machine: machineBusySeconds(), broker: procCpuSeconds(broker), threads: threadCpuSeconds(workerPid) };
    samples.push(s);
    return s.consumed >= N;
  },
  `the worker to drain ${N} messages`,
  30 * 60_000,
);
const from = samples.find((s) => s.consumed >= 0.1 * N) as Sample;
const to = samples[samples.length - 1] as Sample;
const throughput = (to.consumed - from.consumed) / ((to.t - from.t) / 1000);
const coresUsed = (to.cpu - from.cpu) / ((to.t - from.t) / 1000);
const rssBytes = procPeakRss(workerPid);
log(`drain: cores per thread ${JSON.stringify(threadShares(from.threads, to.threads, (to.t - from.t) / 1000))}`);
const drained = await worker.metrics();
log(`drain: ${round(throughput)} msg/s at ${round(coresUsed, 2)} cores, peak RSS ${round(rssBytes / 2 ** 20)} MiB`);
{
  const s = (to.t - from.t) / 1000;
  log(`drain: machine busy ${round((to.machine - from.machine) / s, 2)} of ${CORES} cores (the worker ${round(coresUsed, 2)}, the broker ${round((to.broker - from.broker) / s, 2)})`);
}
const stages = ['decode', 'embed', 'search', 'score', 'produce', 'commit', 'batch'];
const perStage: Record<string, number> = {};
for (const st of stages) perStage[st] = round((metricSum(drained, 'qualm_stage_duration_seconds_sum', `stage="${st}"`) / N) * 1e6, 1);
log(`stages, µs per message (worker's own timers): ${JSON.stringify(perStage)}`);

// The score record's size, for the pass-through's output.
const sample = client.consumer({ groupId: `${topics.group}-size` });
await sample.connect();
await sample.subscribe({ topics: [topics.scores], fromBeginning: true });
let scoreBytes = 0;
let seen = 0;
await sample.run({
  eachMessage: ({ message }) => {
    if (seen < 200) {
      scoreBytes += message.value?.length ?? 0;
      seen++;
    }
    return Promise.resolve();
  },
});
await waitFor(() => seen >= 200, 'score records');
await sample.disconnect();
scoreBytes = Math.round(scoreBytes / seen);

// --- part 4: latency at half the drained rate -----------------------------------------------------------
const rate = args.rate === undefined ? throughput / 2 : Number(args.rate);
const sentAt = new Map<string, number>();
/** Per score record of the phase: when its input was sent, and its latency (ms). */
const timeline: [number, number][] = [];
const reader = client.consumer({ groupId: `${topics.group}-latency`, maxWaitTimeInMs: 20 });
await reader.connect();
await reader.subscribe({ topics: [topics.scores], fromBeginning: false });
await reader.run({
  eachMessage: ({ message }) => {
    const id = message.key?.toString('utf8') ?? '';
    const at = sentAt.get(id);
    if (at !== undefined) timeline.push([at, Number(message.timestamp) - at]);
    return Promise.resolve();
  },
});
await new Promise((r) => setTimeout(r, 3000)); // the reader joins before the first send
const beforeLatency = await worker.metrics();
log(`latency: producing ${round(rate)} msg/s for ${LATENCY_S} s`);
const started = Date.now();
const cpuAtStart = { self: selfCpu(), worker: procCpuSeconds(workerPid), broker: procCpuSeconds(broker), machine: machineBusySeconds(), threads: threadCpuSeconds(workerPid) };
let sent = 0;
while (Date.now() - started < LATENCY_S * 1000) {
  const due = Math.floor(((Date.now() - started) / 1000) * rate);
  const messages: Message[] = [];
  for (; sent < due; sent++) {
    const id = `lat-${sent}`;
    const ts = Date.now();
    sentAt.set(id, ts);
    messages.push({ key: id, value: valueOf(sent, id), timestamp: String(ts) });
  }
  for (const chunk of chunkByBytes(messages, PRODUCE_CHUNK_BYTES)) await producer.send({ topic: topics.input, messages: chunk, acks: -1 });
  await new Promise((r) => setTimeout(r, 10));
}
// Where the cores went while producing: the half-load point leaves room only if the broker and this process leave some.
{
  const s = (Date.now() - started) / 1000;
  log(`latency: cores while producing: worker ${round((procCpuSeconds(workerPid) - cpuAtStart.worker) / s, 2)}, broker ${round((procCpuSeconds(broker) - cpuAtStart.broker) / s, 2)}, this load generator and reader ${round((selfCpu() - cpuAtStart.self) / s, 2)}; the machine ${round((machineBusySeconds() - cpuAtStart.machine) / s, 2)} of ${CORES}`);
  log(`latency: worker cores per thread ${JSON.stringify(threadShares(cpuAtStart.threads, threadCpuSeconds(workerPid), s))}`);
}
await waitFor(() => timeline.length >= sent, `${sent} score records (have ${timeline.length})`, 120_000);
await reader.disconnect();
const latencies = timeline.map(([, l]) => l).sort((a, b) => a - b);
const p50 = quantile(latencies, 0.5);
const p99 = quantile(latencies, 0.99);
log(`latency: p50 ${p50} ms, p99 ${p99} ms, max ${latencies[latencies.length - 1]} ms over ${latencies.length} messages`);
{
  // When the slowest 1% were sent, in 5 s bins of the phase: at this load they come in bursts
  // (a backlog after a pause of some thread), and the bins show how many and where.
  const bins = new Map<number, number>();
  for (const [at, l] of timeline) {
    if (l < p99) continue;
    const bin = Math.floor((at - started) / 5000);
    bins.set(bin, (bins.get(bin) ?? 0) + 1);
  }
  const shown = [...bins].sort((a, b) => a[0] - b[0]).map(([b, n]) => `${b * 5}-${b * 5 + 5} s: ${n}`);
  log(`latency: the slowest 1% by when they were sent: ${shown.join(', ')}`);
}
// Where a job's time goes at this load: the worker's own timers, per job (mean), between the phase's start and end.
{
  const afterLatency = await worker.metrics();
  const delta = (name: string, labels = ''): number => metricSum(afterLatency, name, labels) - metricSum(beforeLatency, name, labels);
  const jobs = delta('qualm_batch_size_count');
  const perJob: Record<string, number> = { messages: round(delta('qualm_batch_size_sum') / jobs, 1) };
  for (const st of stages) perJob[`${st}_ms`] = round((delta('qualm_stage_duration_seconds_sum', `stage="${st}"`) / jobs) * 1000, 2);
  log(`latency: ${jobs} jobs; per job (mean): ${JSON.stringify(perJob)}`);
}
const finalRss = procPeakRss(workerPid);
await worker.stop('SIGTERM');
const complaints = worker.log().split('\n').filter((l) => /"level":(40|50|60)/.test(l));
if (complaints.length > 0) log(`worker warnings and errors (${complaints.length}), the first few:\n${complaints.slice(0, 5).join('\n')}`);

// --- part 5: kafkajs pass-through (after the worker, so that it has the broker to itself) ---------------
const filler = 'x'.repeat(Math.max(0, scoreBytes - 2));
const pass = client.consumer({ groupId: `${topics.group}-pass`, maxBytesPerPartition: 1024 * 1024 });
const passProducer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
await passProducer.connect();
await pass.connect();
await pass.subscribe({ topics: [passIn], fromBeginning: true });
let passed = 0;
let passStart: { t: number; self: number; broker: number } | undefined;
await pass.run({
  autoCommit: false,
  eachBatchAutoResolve: false,
  eachBatch: async (payload) => {
    const { batch } = payload;
    passStart ??= { t: performance.now(), self: selfCpu(), broker: procCpuSeconds(broker) };
    const out: Message[] = [];
    for (const m of batch.messages) {
      const doc = JSON.parse(m.value?.toString('utf8') ?? 'null') as { id: string };
      out.push({ key: doc.id, value: `"${filler}"` });
    }
    for (const chunk of chunkByBytes(out, PRODUCE_CHUNK_BYTES)) await passProducer.send({ topic: passOut, messages: chunk, acks: -1 });
    payload.resolveOffset(batch.lastOffset());
    await payload.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }] }] });
    await payload.heartbeat();
    passed += batch.messages.length;
  },
});
await waitFor(() => passed >= PARTS_N, `the pass-through to move ${PARTS_N} messages`, 10 * 60_000);
const passEnd = { t: performance.now(), self: selfCpu(), broker: procCpuSeconds(broker) };
const ps = passStart as NonNullable<typeof passStart>;
const kafkaSelfUs = ((passEnd.self - ps.self) / passed) * 1e6;
const kafkaBrokerUs = ((passEnd.broker - ps.broker) / passed) * 1e6;
const passRate = passed / ((passEnd.t - ps.t) / 1000);
await pass.disconnect();
await passProducer.disconnect();
await producer.disconnect();
await kafka.stop();
log(`kafka: ${round(kafkaSelfUs, 1)} µs CPU per message in kafkajs + JSON.parse, ${round(kafkaBrokerUs, 1)} µs in the broker (${round(passRate)} msg/s; outputs of ${scoreBytes} bytes)`);

const partsAfter = await modelParts('after the drain');
const onnxCpuUs = (partsBefore.onnxCpuUs + partsAfter.onnxCpuUs) / 2;
const hnswCpuUs = (partsBefore.hnswCpuUs + partsAfter.hnswCpuUs) / 2;
const drift = (partsAfter.onnxCpuUs + partsAfter.hnswCpuUs) / (partsBefore.onnxCpuUs + partsBefore.hnswCpuUs) - 1;
log(`onnx + hnsw: ${round(onnxCpuUs, 1)} + ${round(hnswCpuUs, 1)} µs (mean of before and after; after/before ${drift >= 0 ? '+' : ''}${round(drift * 100, 1)}%)`);
const perMessageUs = onnxCpuUs + hnswCpuUs + kafkaSelfUs + kafkaBrokerUs;
const bound = (CORES / perMessageUs) * 1e6;
log(`bound: ${CORES} cores / ${round(perMessageUs, 1)} µs = ${round(bound)} msg/s`);
console.log(
  JSON.stringify({
    throughput_per_s: round(throughput),
    bound_per_s: round(bound),
    ratio: round(throughput / bound, 3),
    cores_used: round(coresUsed, 2),
    p50_ms: p50,
    p99_ms: p99,
    rss_bytes: Math.max(rssBytes, finalRss),
  }),
);
