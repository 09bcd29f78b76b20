import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Kafka, logLevel } from 'kafkajs';

import { brokerPaths, randomClusterId, renderLog4jProperties, renderServerProperties, type BrokerPaths, type SaslUser, type SecuredListeners } from './config.js';
import { makeTestPki, type TestPki } from './tls.js';
import { ensureKafkaJarsFor } from './jars.js';
import { freeLoopbackPorts } from '../util/ports.js';
import { KAFKA_VERSION } from './version.js';

export interface LocalKafkaOptions {
  /** Broker data dir. Default: a fresh temp dir, removed by stop(). A dir you pass is kept. */
  dataDir?: string;
  /** PLAINTEXT listener port on 127.0.0.1. Default: a free one. */
  port?: number;
  /** Receives the harness's progress lines and anything the JVM prints to stdout/stderr. */
  log?: (line: string) => void;
  /** How long to wait for the broker to answer a metadata request. Default 60 000 ms. */
  startTimeoutMs?: number;
  /**
   * Also open secured listeners (see LocalKafka.secured), with a throw-away CA and
   * certificates made by openssl in <dataDir>/pki. Only for a fresh data dir.
   */
  secured?: { scramUsers: readonly SaslUser[]; plainUsers: readonly SaslUser[] };
}

/** The secured listeners of a broker started with `secured`, and the PKI behind them. */
export interface SecuredEndpoints {
  /** SASL_SSL, SCRAM-SHA-512 only. */
  readonly scram: string[];
  /** SASL_SSL, PLAIN only. */
  readonly plain: string[];
  /** SSL with a client certificate required (ssl.client.auth=required). */
  readonly mtls: string[];
  readonly pki: TestPki;
}

export interface LocalKafka {
  /** Bootstrap servers, e.g. ["127.0.0.1:41234"]. */
  readonly brokers: string[];
  /** Broker version, e.g. "3.9.2". */
  readonly version: string;
  readonly dataDir: string;
  /** Present when started with `secured`. */
  readonly secured?: SecuredEndpoints;
  /** SIGTERM, up to 15 s grace, then SIGKILL. Idempotent. Removes a temp dataDir. */
  stop(): Promise<void>;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;
const TAIL_LINES = 25;

/** Keeps the last `max` lines pushed into it. */
class LineTail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

/**
 * What the broker log says about a failure: its ERROR/FATAL entries (with the
 * first continuation lines, usually the exception) and its last `lines` lines.
 * '' if the file cannot be read.
 */
async function summarizeBrokerLog(path: string, lines: number): Promise<string> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 512 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
  const all = text.split('\n').filter((l) => l.length > 0);
  const errors: string[] = [];
  for (let i = 0; i < all.length && errors.length < 40; i++) {
    const line = all[i] ?? '';
    if (!/^\[[^\]]*\] (ERROR|FATAL) /.test(line)) continue;
    errors.push(line);
    for (let j = i + 1; j < all.length && j <= i + 3 && !(all[j] ?? '').startsWith('['); j++) errors.push(all[j] ?? '');
  }
  const tail = all.slice(-lines).join('\n');
  return errors.length > 0 ? `${errors.join('\n')}\n...\n${tail}` : tail;
}

function javaBin(): string {
  const home = process.env['JAVA_HOME'];
  return home !== undefined && home !== '' ? join(home, 'bin', 'java') : 'java';
}

function jvmArgs(libs: string, paths: BrokerPaths): string[] {
  return [
    `-Dlog4j.configuration=${pathToFileURL(paths.log4jProperties).href}`,
    `-Dkafka.logs.dir=${join(paths.dataDir, 'logs')}`,
    '-Djava.awt.headless=true',
    '-cp',
    join(libs, '*'),
  ];
}

/** A SCRAM credential for `kafka-storage format --add-scram`; the password in quotes, verbatim. */
function scramArg(u: SaslUser): string {
  if (!/^[A-Za-z0-9._-]+$/.test(u.name)) throw new Error(`local-kafka: SCRAM user name ${JSON.stringify(u.name)} must match [A-Za-z0-9._-]+`);
  // The storage tool splits its argument on commas, even inside the quotes.
  if (/[",\]]/.test(u.password)) throw new Error(`local-kafka: a SCRAM password for ${u.name} must not contain a double quote, a comma or ]`);
  return `SCRAM-SHA-512=[name=${u.name},password="${u.password}"]`;
}

function formatStorage(libs: string, paths: BrokerPaths, clusterId: string, scramUsers: readonly SaslUser[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      javaBin(),
      [
        '-Xmx256m',
        '-XX:TieredStopAtLevel=1',
        ...jvmArgs(libs, paths),
        'kafka.tools.StorageTool',
        'format',
        '-t',
        clusterId,
        '-c',
        paths.serverProperties,
        ...scramUsers.flatMap((u) => ['--add-scram', scramArg(u)]),
      ],
      { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const out = `${stdout}${stderr}`.trim();
        if (err) reject(new Error(`local-kafka: kafka storage format failed: ${err.message}\n${out}`));
        else resolve(out);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls until the broker answers a real metadata round trip (kafkajs admin
 * connect + describeCluster). Rejects early if the JVM exits.
 */
async function waitUntilReady(
  brokers: string[],
  deadline: number,
  exited: () => string | undefined,
): Promise<{ attempts: number }> {
  let delay = 100;
  let attempts = 0;
  let lastError = 'no attempt made';
  while (Date.now() < deadline) {
    const gone = exited();
    if (gone !== undefined) throw new Error(`broker JVM exited during startup (${gone})`);
    attempts++;
    const remaining = Math.max(500, deadline - Date.now());
    const admin = new Kafka({
      clientId: 'qualm-local-kafka-probe',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: Math.min(2_000, remaining),
      requestTimeout: Math.min(5_000, remaining),
      retry: { retries: 0 },
    }).admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0 && cluster.controller !== null) return { attempts };
      lastError = 'metadata answered without brokers/controller yet';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(1_000, Math.round(delay * 1.5));
  }
  throw new Error(`broker did not answer metadata requests in time (${attempts} attempts; last error: ${lastError})`);
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait for the exit. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5_000);
}

/**
 * A tiny shell process that SIGKILLs the JVM as soon as its stdin reaches
 * EOF, i.e. as soon as this Node process is gone for whatever reason
 * (including SIGKILL/SIGTERM, where no 'exit' handler runs), then removes
 * the temp data dir if there is one. We never write to its stdin; stop()
 * kills the watchdog itself after the JVM is gone.
 */
const WATCHDOG_SCRIPT = [
  'while read -r _; do :; done',
  'kill -9 "$1" 2>/dev/null',
  'if [ -n "$2" ]; then',
  // wait (at most 5 s) until the JVM is gone or a zombie, i.e. holds no files
  '  i=0',
  '  while [ $i -lt 50 ]; do',
  '    s=$(ps -o stat= -p "$1" 2>/dev/null) || break',
  '    case "$s" in Z*|"") break ;; esac',
  '    sleep 0.1; i=$((i+1))',
  '  done',
  '  rm -rf -- "$2"',
  'fi',
].join('\n');

function spawnWatchdog(jvmPid: number, tempDataDir: string | undefined): ChildProcess {
  const dog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'qualm-kafka-watchdog', String(jvmPid), tempDataDir ?? ''], {
    stdio: ['pipe', 'ignore', 'ignore'],
    // Its own process group, like the JVM's: a terminal's Ctrl-C goes to our process, which
    // then stops the broker in order; the watchdog still fires when this process is gone.
    detached: true,
  });
  dog.on('error', () => undefined);
  dog.stdin?.on('error', () => undefined);
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return dog;
}

export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  return startLocalKafkaVersion(KAFKA_VERSION, opts);
}

/** startLocalKafka for any version whose jars scripts/kafka.sh can fetch; for experiments. */
export async function startLocalKafkaVersion(version: string, opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  const log = opts.log ?? (() => undefined);
  // A first-time jar fetch (Maven) does not count against startTimeoutMs.
  const libs = await ensureKafkaJarsFor(version);
  const t0 = Date.now();
  const deadline = t0 + (opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);

  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'qualm-kafka-')));
  const paths = brokerPaths(dataDir);
  const cleanupDataDir = async (): Promise<void> => {
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  };

  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  const onParentExit = (): void => {
    // Synchronous only: this runs from process.on('exit').
    try {
      child?.kill('SIGKILL');
    } catch {
      /* already gone */
    }
    try {
      watchdog?.kill('SIGKILL');
    } catch {
      /* already gone */
    }
    if (ownDataDir) {
      try {
        rmSync(dataDir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  };

  try {
    const [freeA, freeB, scramPort, plainPort, mtlsPort] = await freeLoopbackPorts(opts.secured === undefined ? 2 : 5);
    if (freeA === undefined || freeB === undefined) throw new Error('local-kafka: could not find free ports');
    const port = opts.port ?? freeA;
    const controllerPort = freeB === port ? freeA : freeB;
    const brokers = [`127.0.0.1:${port}`];

    await mkdir(join(dataDir, 'logs'), { recursive: true });
    let secured: SecuredEndpoints | undefined;
    let listeners: SecuredListeners | undefined;
    if (opts.secured !== undefined) {
      if (scramPort === undefined || plainPort === undefined || mtlsPort === undefined) throw new Error('local-kafka: could not find free ports');
      const pki = await makeTestPki(join(dataDir, 'pki'));
      listeners = { scramPort, plainPort, mtlsPort, keystore: pki.brokerKeystore, truststore: pki.caCert, plainUsers: opts.secured.plainUsers };
      secured = { scram: [`127.0.0.1:${scramPort}`], plain: [`127.0.0.1:${plainPort}`], mtls: [`127.0.0.1:${mtlsPort}`], pki };
    }
    await writeFile(
      paths.serverProperties,
      renderServerProperties({ port, controllerPort, logDirs: paths.logDirs, ...(listeners === undefined ? {} : { secured: listeners }) }),
    );
    await writeFile(paths.log4jProperties, renderLog4jProperties(paths.brokerLog));

    if (existsSync(join(paths.logDirs, 'meta.properties'))) {
      log(`local-kafka: reusing formatted storage in ${paths.logDirs}`);
    } else {
      const clusterId = randomClusterId();
      log(`local-kafka: formatting ${paths.logDirs} (cluster ${clusterId})`);
      log(await formatStorage(libs, paths, clusterId, opts.secured?.scramUsers));
    }

    const output = new LineTail(TAIL_LINES);
    const jvm = spawn(
      javaBin(),
      [
        '-Xms128m',
        '-Xmx512m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        '-XX:+ExitOnOutOfMemoryError',
        ...jvmArgs(libs, paths),
        'kafka.Kafka',
        paths.serverProperties,
      ],
      // detached: its own process group, so that a Ctrl-C meant for the demo or the tests does
      // not kill the broker under a worker that is still draining; stop() and the watchdog end it.
      { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    child = jvm;
    process.on('exit', onParentExit);

    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    jvm.on('error', (err) => {
      spawnError = err;
      exitInfo = `spawn failed: ${err.message}`;
    });
    jvm.on('exit', (code, signal) => {
      exitInfo = signal !== null ? `signal ${signal}` : `exit code ${code}`;
    });
    for (const stream of [jvm.stdout, jvm.stderr]) {
      if (stream === null) continue;
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          output.push(line);
          log(line);
        }
      });
      (stream as unknown as { unref?: () => void }).unref?.();
    }
    jvm.unref();
    if (jvm.pid !== undefined) watchdog = spawnWatchdog(jvm.pid, ownDataDir ? dataDir : undefined);
    log(`local-kafka: JVM pid ${jvm.pid ?? '?'} starting Kafka ${version} on ${brokers[0]} (controller :${controllerPort})`);

    try {
      const { attempts } = await waitUntilReady(brokers, deadline, () => exitInfo);
      log(`local-kafka: Kafka ${version} ready on ${brokers[0]} after ${Date.now() - t0} ms (${attempts} probes)`);
    } catch (err) {
      await terminate(jvm, 2_000);
      const fileTail = await summarizeBrokerLog(paths.brokerLog, TAIL_LINES);
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(
        `local-kafka: Kafka ${version} failed to start on ${brokers[0]}: ${msg}` +
          (spawnError ? `\n(${spawnError.message})` : '') +
          `\n--- errors and last lines of ${paths.brokerLog} ---\n${fileTail || '(empty)'}` +
          `\n--- last JVM stdout/stderr ---\n${output.toString() || '(empty)'}`,
      );
    }

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        await terminate(jvm, STOP_GRACE_MS);
        if (watchdog) {
          watchdog.kill('SIGKILL');
          await waitForExit(watchdog, 2_000);
        }
        process.off('exit', onParentExit);
        await cleanupDataDir();
        log(`local-kafka: Kafka on ${brokers[0]} stopped`);
      })();
      return stopping;
    };

    return { brokers, version, dataDir, ...(secured === undefined ? {} : { secured }), stop };
  } catch (err) {
    if (child) await terminate(child, 2_000);
    if (watchdog) watchdog.kill('SIGKILL');
    process.off('exit', onParentExit);
    await cleanupDataDir();
    throw err;
  }
}
