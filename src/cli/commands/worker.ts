import type { Config } from '../../config/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { describeError } from '../../errors.js';
import { loadCurrentBundle, type IndexSnapshot } from '../../index/index.js';
import { createLogger } from '../../logging/index.js';
import { QualmMetrics, startHealthServer, type HealthServer } from '../../metrics/index.js';
import { StreamWorker, createKafka } from '../../stream/index.js';
import { parseFlags } from '../args.js';

export const HELP = `qualm worker: score the input topic and publish flagged samples for review

Usage: qualm worker

Joins consumer group QUALM_GROUP_ID on QUALM_INPUT_TOPIC, embeds each batch with the model
at QUALM_MODEL_PATH, scores it against the bundle named by QUALM_BUNDLE_DIR/CURRENT, and
publishes review records (flagged samples), score records (every sample, when
QUALM_SCORES_TOPIC is set) and DLQ records (malformed messages). Offsets are committed only
after those writes are acknowledged. Serves /metrics, /healthz and /readyz on
QUALM_METRICS_HOST:QUALM_METRICS_PORT. SIGTERM or SIGINT drains the in-flight batch and exits.
All settings come from the environment (or QUALM_CONFIG_FILE): see the README.

Options:
  -h, --help  this text`;

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, {});
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const logger = createLogger(config.logLevel);
  const log = logger.child({ area: 'cli' });
  const metrics = new QualmMetrics();

  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  let snapshot: IndexSnapshot;
  try {
    snapshot = await loadCurrentBundle(config.bundleDir, { efSearch: config.efSearch, expectModelSha256: encoder.sha256 });
  } catch (err) {
    await encoder.close();
    throw err;
  }
  metrics.setBundle({ version: snapshot.version, modelSha256: snapshot.manifest.model.sha256, count: snapshot.count, createdAt: Date.parse(snapshot.manifest.created_at) });
  log.info(
    { event: 'bundle_loaded', version: snapshot.version, count: snapshot.count, k: snapshot.stats.k, model: encoder.manifest.name },
    'reference bundle loaded',
  );

  let fatal: ((err: Error) => void) | undefined;
  const worker = new StreamWorker({
    config,
    kafka: createKafka(config, logger),
    embedder: encoder,
    snapshot: () => snapshot,
    metrics,
    logger,
    onFatal: (err) => fatal?.(err),
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
      const steps: [string, () => Promise<void>][] = [
        ['worker', drain],
        ['encoder', () => encoder.close()],
        ['health-server', () => server?.close() ?? Promise.resolve()],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          log.error({ event: 'close_step_failed', step: name, error: describeError(err) }, 'shutdown step failed');
        }
      }
    })());

  const done = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(() => resolve(drainTimedOut ? 1 : 0)));
    process.once('SIGINT', () => void stop('SIGINT').then(() => resolve(drainTimedOut ? 1 : 0)));
    // A consumer that kafkajs gives up on ends the process, so that its supervisor restarts it.
    fatal = (err) => void stop(`consumer crashed: ${describeError(err)}`).then(() => resolve(1));
  });

  try {
    server = await startHealthServer({ host: config.metricsHost, port: config.metricsPort, registry: metrics.registry, isReady: () => worker.isReady() });
    log.info({ event: 'metrics_listening', host: config.metricsHost, port: server.port }, `metrics on http://${config.metricsHost}:${server.port}/metrics`);
    await worker.start();
  } catch (err) {
    await stop('start failed');
    throw err;
  }
  const code = await done;
  log.info({ event: 'exit', code }, 'worker exited');
  logger.flush();
  return code;
}
