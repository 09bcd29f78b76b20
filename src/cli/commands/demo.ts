import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Config } from '../../config/index.js';
import { readDlqHeaders, type ScoreRecord } from '../../contracts/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { loadCurrentBundle } from '../../index/index.js';
import { KAFKA_VERSION, startLocalKafka, type LocalKafka } from '../../local-kafka/index.js';
import { createLogger } from '../../logging/index.js';
import { KafkajsTransport, type Follower, type Transport } from '../../transport/index.js';
import { packageRoot } from '../../util/package-root.js';
import { freeLoopbackPort } from '../../util/ports.js';
import { intFlag, parseFlags, ratioFlag } from '../args.js';
import { buildFashionMnistBundle } from './build-index.js';
import { produceMix } from './produce.js';
import { MALFORMED_KINDS, type SampleKind } from '../sample-mix.js';
import { stopOnSignals } from '../stop-signals.js';

export const HELP = `qualm demo: the whole path on a local Apache Kafka broker

Usage: npm run demo [-- --max-samples N] [--rate R] [--ood-share X] [--malformed-share Y] [--seed S]

Starts a throw-away single-node Kafka ${KAFKA_VERSION} (KRaft, loopback), builds the reference
bundle if there is none for the current model, starts 'qualm worker' as a child process,
streams a mix of Fashion-MNIST test images (in distribution), MNIST digits (out of
distribution) and malformed messages, and prints a one-line summary every second from the
worker's output topics. Ctrl-C (or --max-samples) stops everything cleanly; the last line
is a JSON summary.

Options:
  --max-samples N      stop after N input messages (default: run until Ctrl-C)
  --rate R             input messages per second, 0 = as fast as possible (default: 1000)
  --ood-share X        share of MNIST digits (default: 0.15)
  --malformed-share Y  share of malformed messages (default: 0.05)
  --seed S             seed of the mix (default: 1)
  -h, --help           this text`;

const REPO_ROOT = packageRoot();
const IN_DIST_SOURCE = 'fashion-mnist/t10k';
const OOD_SOURCE = 'mnist';

interface Tally {
  scored: number;
  flagged: number;
  reviews: number;
  dlq: number;
  bySource: Map<string, { scored: number; flagged: number }>;
  dlqByCode: Map<string, number>;
  seen: Set<string>;
  lastOutputAt: number;
}

async function waitReady(port: number, child: ChildProcess, logPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`worker exited with code ${child.exitCode} before it was ready; see ${logPath}:\n${tail(logPath)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(1000, delay * 2);
  }
  throw new Error(`worker not ready after ${timeoutMs / 1000}s; see ${logPath}:\n${tail(logPath)}`);
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function startMonitor(transport: Transport, c: Config, scoresTopic: string, tally: Tally): Promise<Follower> {
  return transport.follow([scoresTopic, c.reviewTopic, c.dlqTopic], (message, { topic }) => {
    tally.lastOutputAt = Date.now();
    if (topic === c.dlqTopic) {
      const info = readDlqHeaders(message.headers);
      const key = `${info?.source.partition ?? '?'}:${info?.source.offset ?? message.offset}`;
      if (tally.seen.has(key)) return;
      tally.seen.add(key);
      tally.dlq++;
      const code = info?.code ?? 'unknown';
      tally.dlqByCode.set(code, (tally.dlqByCode.get(code) ?? 0) + 1);
      return;
    }
    if (topic === c.reviewTopic) {
      tally.reviews++;
      return;
    }
    const rec = JSON.parse(message.value?.toString('utf8') ?? '{}') as ScoreRecord;
    const key = `${rec.source.partition}:${rec.source.offset}`;
    if (tally.seen.has(key)) return;
    tally.seen.add(key);
    tally.scored++;
    const src = typeof rec.meta?.source === 'string' ? rec.meta.source : 'unknown';
    const s = tally.bySource.get(src) ?? { scored: 0, flagged: 0 };
    s.scored++;
    if (rec.flagged) {
      s.flagged++;
      tally.flagged++;
    }
    tally.bySource.set(src, s);
  });
}

function share(t: Tally, source: string): number {
  const s = t.bySource.get(source);
  return s === undefined || s.scored === 0 ? 0 : s.flagged / s.scored;
}

export async function run(argv: string[], baseConfig: Config): Promise<number> {
  const { values } = parseFlags(argv, {
    'max-samples': { type: 'string' },
    rate: { type: 'string' },
    'ood-share': { type: 'string' },
    'malformed-share': { type: 'string' },
    seed: { type: 'string' },
  });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const maxSamples = values['max-samples'] === undefined ? undefined : intFlag('max-samples', values['max-samples'], 0, 1);
  const rate = intFlag('rate', values.rate, 1000);
  const oodShare = ratioFlag('ood-share', values['ood-share'], 0.15);
  const malformedShare = ratioFlag('malformed-share', values['malformed-share'], 0.05);
  const seed = intFlag('seed', values.seed, 1);

  const runDir = join(REPO_ROOT, 'var', 'demo');
  mkdirSync(runDir, { recursive: true });
  const say = (line: string): void => console.log(line);

  say(`qualm demo: starting Apache Kafka ${KAFKA_VERSION} (KRaft, single node, loopback)...`);
  const broker: LocalKafka = await startLocalKafka({ log: () => undefined });
  let worker: ChildProcess | undefined;
  let killOnExit: (() => void) | undefined;
  let monitor: Follower | undefined;
  const stop = stopOnSignals();
  try {
    say(`kafka broker ${broker.version} on ${broker.brokers.join(',')}`);
    const scoresTopic = 'qualm.scores';
    const env: Record<string, string> = { KAFKA_BROKERS: broker.brokers.join(','), QUALM_SCORES_TOPIC: scoresTopic };
    const config: Config = { ...baseConfig, kafkaBrokers: broker.brokers, scoresTopic };

    // The bundle must exist, match the model and carry a fitted combination; otherwise build one (about a minute on 60k references).
    const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
    const modelSha = encoder.sha256;
    await encoder.close();
    let bundleOk = false;
    try {
      const snap = await loadCurrentBundle(config.bundleDir, { efSearch: config.efSearch, expectModelSha256: modelSha, sanityQueries: 2 });
      if (snap.combination === undefined) {
        say(`reference bundle ${snap.version} predates fitted combinations`);
      } else {
        say(`reference bundle ${snap.version}: ${snap.count} references, k=${snap.stats.k}`);
        bundleOk = true;
      }
    } catch (err) {
      say(`no usable reference bundle in ${config.bundleDir}: ${(err as Error).message}`);
    }
    if (!bundleOk) {
      say('building one from the Fashion-MNIST training set (about a minute)...');
      const res = await buildFashionMnistBundle(config, { k: config.k, batch: 512, signal: stop.signal });
      say(`built bundle ${res.version}: ${res.manifest.count} references`);
    }

    const metricsPort = await freeLoopbackPort();
    const logPath = join(runDir, 'worker.log');
    const logStream = createWriteStream(logPath, { flags: 'w' });
    worker = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'qualm.js'), 'worker'], {
      env: { ...process.env, ...env, QUALM_METRICS_HOST: '127.0.0.1', QUALM_METRICS_PORT: String(metricsPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: Ctrl-C reaches the demo, which then stops the worker in order
      // (before the broker it talks to).
      detached: true,
    });
    const child = worker;
    killOnExit = () => child.kill('SIGKILL');
    process.on('exit', killOnExit);
    worker.stdout?.pipe(logStream);
    worker.stderr?.pipe(logStream);
    say(`worker started (pid ${worker.pid}), logs in ${logPath}, metrics on http://127.0.0.1:${metricsPort}/metrics`);
    await waitReady(metricsPort, worker, logPath, 120_000);

    const tally: Tally = { scored: 0, flagged: 0, reviews: 0, dlq: 0, bySource: new Map(), dlqByCode: new Map(), seen: new Set(), lastOutputAt: 0 };
    // The demo's own Kafka clients log to a file: stdout is the live summary, its last line the JSON.
    const transport = KafkajsTransport.fromConfig(config, createLogger('info', pino.destination({ dest: join(runDir, 'demo-clients.log'), sync: true })), '-demo');
    monitor = await startMonitor(transport, config, scoresTopic, tally);

    let sent = 0;
    let malformedSent = 0;
    const t0 = Date.now();
    const printLine = (): void => {
      const el = (Date.now() - t0) / 1000;
      const processed = tally.scored + tally.dlq;
      const ood = tally.bySource.get(OOD_SOURCE);
      const ind = tally.bySource.get(IN_DIST_SOURCE);
      say(
        `[${el.toFixed(0).padStart(4)}s] sent ${sent} | scored ${tally.scored} | flagged ${tally.flagged} ` +
          `(mnist ${ood?.flagged ?? 0}/${ood?.scored ?? 0}, fashion ${ind?.flagged ?? 0}/${ind?.scored ?? 0}) | ` +
          `dlq ${tally.dlq}/${malformedSent} | ${(processed / Math.max(el, 1e-3)).toFixed(0)} msg/s`,
      );
    };
    const ticker = setInterval(printLine, 1000);
    try {
      const counts = await produceMix(transport, {
        topic: config.inputTopic,
        count: maxSamples,
        rate,
        oodShare,
        malformedShare,
        seed,
        oversizeBytes: config.maxMessageBytes + 1024,
        idPrefix: `demo-${Date.now().toString(36)}`,
        signal: stop.signal,
        onSent: (c: Readonly<Record<SampleKind, number>>, total) => {
          sent = total;
          malformedSent = MALFORMED_KINDS.reduce((a, k) => a + c[k], 0);
        },
      });
      malformedSent = MALFORMED_KINDS.reduce((a, k) => a + counts[k], 0);
      // Wait until every sent message has come out the other side (or Ctrl-C / 120 s).
      const deadline = Date.now() + 120_000;
      while (tally.scored + tally.dlq < sent && Date.now() < deadline && !stop.signal.aborted) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearInterval(ticker);
    }
    const exit = waitExit(worker);
    worker.kill('SIGTERM');
    const code = await exit;
    // What the drained worker published last reaches the monitor a moment later: wait until the tally settles.
    for (let last = -1; last !== tally.scored + tally.dlq; ) {
      last = tally.scored + tally.dlq;
      await new Promise((r) => setTimeout(r, 500));
    }
    printLine();
    say(`worker drained and exited with code ${code}`);
    const processed = tally.scored + tally.dlq;
    const elapsed = Math.max(1e-3, ((tally.lastOutputAt || Date.now()) - t0) / 1000);

    say('');
    say(`final: ${sent} sent, ${processed} processed (${tally.scored} scored, ${tally.dlq} to the DLQ), ${tally.flagged} flagged (${tally.reviews} review records)`);
    for (const [src, s] of [...tally.bySource.entries()].sort()) {
      say(`  ${src.padEnd(20)} ${String(s.flagged).padStart(6)} / ${String(s.scored).padStart(6)} flagged (${((s.flagged / Math.max(1, s.scored)) * 100).toFixed(1)}%)`);
    }
    for (const [codeName, n] of [...tally.dlqByCode.entries()].sort()) say(`  dlq ${codeName.padEnd(24)} ${n}`);
    if (stop.signal.aborted) say(`stopped by signal: ${sent - processed} sent messages were not processed`);
    const summary = {
      consumed: processed,
      flagged: tally.flagged,
      dlq: tally.dlq,
      malformed_sent: malformedSent,
      flagged_ood_share: round(share(tally, OOD_SOURCE)),
      flagged_in_dist_share: round(share(tally, IN_DIST_SOURCE)),
      throughput_per_s: round(processed / elapsed, 1),
    };
    console.log(JSON.stringify(summary));
    return code === 0 && (processed === sent || stop.signal.aborted) ? 0 : 1;
  } finally {
    stop.release();
    await monitor?.stop().catch(() => undefined);
    if (worker !== undefined && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGKILL');
    }
    if (killOnExit !== undefined) process.off('exit', killOnExit);
    await broker.stop();
  }
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function waitExit(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => child.once('exit', (code, signal) => res(code ?? (signal === null ? 1 : 128))));
}
