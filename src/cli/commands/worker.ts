import type { Config } from '../../config/index.js';
import { DLQ_CODES, FLAG_REASONS } from '../../contracts/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { ConfigError, describeError } from '../../errors.js';
import { BundleRefresher, HttpBundleStore, LocalBundleStore, SearchThread, loadCurrentFromStore, type BundleStore, type IndexSnapshot, type LoadOptions, type StoreEvent } from '../../index/index.js';
import { checkCombination } from '../../scoring/index.js';
import { createLogger, type Logger } from '../../logging/index.js';
import { QualmMetrics, startHealthServer, type HealthServer } from '../../metrics/index.js';
import { StreamWorker } from '../../stream/index.js';
import { KafkajsTransport } from '../../transport/index.js';
import { runSteps } from '../../util/run-steps.js';
import { parseFlags } from '../args.js';

export const HELP = `qualm worker: score the input topic and publish flagged samples for review

Usage: qualm worker

Joins consumer group QUALM_GROUP_ID on QUALM_INPUT_TOPIC, embeds each batch with the model
at QUALM_MODEL_PATH, scores it against the bundle named by QUALM_BUNDLE_DIR/CURRENT, or by
QUALM_BUNDLE_URL/CURRENT when that HTTP(S) store is set (versions are then downloaded into
QUALM_BUNDLE_DIR). A new version is verified and swapped in without a restart (checked every
QUALM_REFRESH_INTERVAL_MS). Publishes review records (flagged samples), score records
(every sample, when QUALM_SCORES_TOPIC is set) and DLQ records (malformed messages). Offsets
are committed only after those writes are acknowledged; with QUALM_DELIVERY=exactly_once the
records and offsets of each batch are one Kafka transaction (readers use read_committed). Serves /metrics, /healthz and /readyz on
QUALM_METRICS_HOST:QUALM_METRICS_PORT. SIGTERM or SIGINT drains the in-flight batch and exits.
All settings come from the environment (or QUALM_CONFIG_FILE): see the README.

Options:
  -h, --help  this text`;

/** The store the worker follows: QUALM_BUNDLE_URL with QUALM_BUNDLE_DIR as its cache, or QUALM_BUNDLE_DIR itself. */
export function bundleStore(config: Config, logger: Logger): BundleStore {
  if (config.bundleUrl === undefined) return new LocalBundleStore(config.bundleDir);
  const log = logger.child({ area: 'bundle-store' });
  const onEvent = (e: StoreEvent): void => {
    if (e.kind === 'retry') log.warn({ event: 'bundle_download_retry', url: e.url, attempt: e.attempt, delayMs: e.delayMs, reason: e.reason }, 'bundle download failed; retrying');
    else if (e.kind === 'downloaded') log.info({ event: 'bundle_downloaded', version: e.version, bytes: e.bytes, ms: e.ms, resumedFiles: e.resumed }, `downloaded bundle ${e.version}`);
    else if (e.kind === 'pruned') log.info({ event: 'bundle_cache_pruned', removed: e.versions }, 'pruned the bundle cache');
    else log.warn({ event: 'bundle_cache_error', reason: e.reason }, 'could not tidy the bundle cache');
  };
  return new HttpBundleStore(config.bundleUrl, config.bundleDir, { idleTimeoutMs: config.bundleDownloadTimeoutMs, retain: config.bundleRetain, onEvent });
}

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {});
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const logger = createLogger(config.logLevel);
  const log = logger.child({ area: 'cli' });
  const metrics = new QualmMetrics();
  metrics.primeLabels({ flagReasons: FLAG_REASONS, dlqCodes: DLQ_CODES });

  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  if (config.inputFormat === 'image' && encoder.inputKind !== 'image') {
    // Every message would go to the DLQ as QUALM_UNSUPPORTED_INPUT: refuse the start instead.
    await encoder.close();
    throw new ConfigError([{ key: 'QUALM_INPUT_FORMAT', message: `image (raw image messages) needs an image model; ${config.modelPath} takes ${encoder.inputKind}` }]);
  }
  const store = bundleStore(config, logger);
  const loadOptions: LoadOptions = {
    efSearch: config.efSearch,
    expectModelSha256: encoder.sha256,
    expectMetric: encoder.metric,
    checkScoring: (m) => {
      if (m.scoring.combination !== undefined) checkCombination(m.scoring.combination);
    },
  };
  let snapshot: IndexSnapshot;
  try {
    snapshot = await loadCurrentFromStore(store, loadOptions);
  } catch (err) {
    await encoder.close();
    throw err;
  }
  // kNN search runs on a thread of its own, beside the main thread and the inference thread.
  const searchThread = new SearchThread();
  const openInSearchThread = async (s: IndexSnapshot): Promise<void> => {
    try {
      await searchThread.open(s);
    } catch (err) {
      log.warn({ event: 'search_thread_open_failed', version: s.version, error: describeError(err) }, 'the search thread cannot open the bundle; searching it on the main thread');
    }
  };
  await openInSearchThread(snapshot);
  const showBundle = (s: IndexSnapshot): void =>
    metrics.setBundle({ version: s.version, modelSha256: s.manifest.model.sha256, count: s.count, createdAt: Date.parse(s.manifest.created_at) });
  showBundle(snapshot);
  const refresher = new BundleRefresher(store, snapshot, {
    intervalMs: config.refreshIntervalMs,
    load: loadOptions,
    prepare: openInSearchThread,
    onOutcome: (o) => {
      if (o.kind === 'swapped') {
        searchThread.retain(refresher.current());
        metrics.bundleRefresh.inc({ outcome: 'swapped' });
        metrics.bundleLoadSeconds.observe(o.loadMs / 1000);
        showBundle(refresher.current());
        log.info({ event: 'bundle_swapped', from: o.from, to: o.to, loadMs: o.loadMs }, `serving bundle ${o.to}`);
      } else if (o.kind === 'refused') {
        metrics.bundleRefresh.inc({ outcome: 'refused' });
        log.error({ event: 'bundle_refused', version: o.version, reason: o.reason }, `refused bundle ${o.version}; still serving ${refresher.current().version}`);
      } else if (o.kind === 'error') {
        metrics.bundleRefresh.inc({ outcome: 'error' });
        log.warn({ event: 'bundle_check_failed', reason: o.reason }, 'could not check for a new bundle');
      }
    },
  });
  log.info(
    { event: 'bundle_loaded', version: snapshot.version, count: snapshot.count, k: snapshot.stats.k, model: encoder.manifest.name, store: store.describe() },
    'reference bundle loaded',
  );

  let fatal: ((err: Error) => void) | undefined;
  const worker = new StreamWorker({
    config,
    transport: KafkajsTransport.fromConfig(config, logger),
    embedder: encoder,
    snapshot: () => refresher.current(),
    metrics,
    logger,
    onFatal: (err) => fatal?.(err),
    search: (snap, vectors) => searchThread.search(snap, vectors),
  });
  let server: HealthServer | undefined;

  let drainTimedOut = false;
  const drain = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), config.shutdownTimeoutMs);
    });
    const outcome = await Promise.race([worker.close().then(() => 'closed' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      drainTimedOut = true;
      log.error({ event: 'drain_timeout', timeoutMs: config.shutdownTimeoutMs }, 'in-flight batch not finished in time; it will be re-delivered');
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      log.info({ event: 'shutdown', why }, 'draining');
      await runSteps(
        [
          ['refresher', () => refresher.stop()],
          ['worker', drain],
          ['encoder', () => encoder.close()],
          ['search-thread', () => searchThread.close()],
          ['health-server', () => server?.close() ?? Promise.resolve()],
        ],
        (step, err) => log.error({ event: 'close_step_failed', step, error: describeError(err) }, 'shutdown step failed'),
      );
    })());

  const done = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(() => resolve(drainTimedOut ? 1 : 0)));
    process.once('SIGINT', () => void stop('SIGINT').then(() => resolve(drainTimedOut ? 1 : 0)));
    // A consumer that kafkajs gives up on ends the process, so that its supervisor restarts it.
    fatal = (err) => void stop(`consumer crashed: ${describeError(err)}`).then(() => resolve(1));
  });

  const starting = (async (): Promise<void> => {
    server = await startHealthServer({ host: config.metricsHost, port: config.metricsPort, registry: metrics.registry, isReady: () => worker.isReady() });
    log.info({ event: 'metrics_listening', host: config.metricsHost, port: server.port }, `metrics on http://${config.metricsHost}:${server.port}/metrics`);
    await worker.start();
    refresher.start();
  })();
  // A signal while the worker is still connecting or joining (a broker that is down, say) is
  // honoured then, not after kafkajs has given up its retries.
  const first = await Promise.race([starting.then(() => undefined), done.then((code) => ({ code }))]).catch(async (err: unknown) => {
    await stop('start failed');
    throw err;
  });
  if (first !== undefined) {
    starting.catch(() => undefined);
    log.info({ event: 'exit', code: first.code, phase: 'starting' }, 'worker exited before it was consuming');
    logger.flush();
    return first.code;
  }
  const code = await done;
  log.info({ event: 'exit', code }, 'worker exited');
  logger.flush();
  return code;
}
