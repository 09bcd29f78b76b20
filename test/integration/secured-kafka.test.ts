// Secured Kafka for real: one local broker with SASL_SSL + SCRAM-SHA-512, SASL_SSL + PLAIN and
// SSL with client certificates required (a throw-away CA made by openssl at test time), and
// the worker and every CLI command that talks to Kafka connecting to it as processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import { startLocalKafka, type LocalKafka, type SecuredEndpoints } from '../../src/local-kafka/index.js';
import type { ReviewRecord, ScoreRecord } from '../../src/contracts/index.js';
import { SLICE_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/datasets/index.js';
import { TopicReader, createTopics, produce, testKafka, uniqueName, uniqueWorkerTopics, workerTopicEnv } from '../helpers/kafka.js';
import { WorkerProcess } from '../helpers/worker-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'qualm.js');

/** Spaces inside, at the start and at the end: all part of the password. */
const ALICE_PASSWORD = ' alice s3cret with spaces ';
const BOB_PASSWORD = 'bob "plain" pass ';

const secrets = mkdtempSync(join(tmpdir(), 'qualm-secrets-'));
const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-secured-bundle-'));
let broker: LocalKafka;
let sec: SecuredEndpoints;
let kafka: Kafka;
const workers: WorkerProcess[] = [];
const readers: TopicReader[] = [];

/** A file as Kubernetes mounts a secret key: exactly these bytes. */
function secretFile(name: string, content: string): string {
  const path = join(secrets, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

before(async () => {
  broker = await startLocalKafka({
    secured: { scramUsers: [{ name: 'alice', password: ALICE_PASSWORD }], plainUsers: [{ name: 'bob', password: BOB_PASSWORD }] },
  });
  assert.ok(broker.secured);
  sec = broker.secured;
  console.log(`kafka ${broker.version}: plaintext ${broker.brokers[0]}, scram ${sec.scram[0]}, plain ${sec.plain[0]}, mtls ${sec.mtls[0]}`);
  kafka = testKafka(broker.brokers);
});

after(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  await broker?.stop();
  rmSync(secrets, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
});

/** SASL_SSL with SCRAM-SHA-512, the password from a mounted file. */
function scramEnv(passwordFile = secretFile('alice-password', ALICE_PASSWORD)): Record<string, string> {
  return {
    KAFKA_BROKERS: sec.scram.join(','),
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: sec.pki.caCert,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'alice',
    KAFKA_SASL_PASSWORD_FILE: passwordFile,
  };
}

/** SASL_SSL with PLAIN, the password straight from the environment. */
function plainEnv(password = BOB_PASSWORD): Record<string, string> {
  return {
    KAFKA_BROKERS: sec.plain.join(','),
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: sec.pki.caCert,
    KAFKA_SASL_MECHANISM: 'plain',
    KAFKA_SASL_USERNAME: 'bob',
    KAFKA_SASL_PASSWORD: password,
  };
}

/** SSL with a client certificate whose key is encrypted. */
function mtlsEnv(): Record<string, string> {
  return {
    KAFKA_BROKERS: sec.mtls.join(','),
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: sec.pki.caCert,
    KAFKA_SSL_CERT_FILE: sec.pki.clientCert,
    KAFKA_SSL_KEY_FILE: sec.pki.clientKey,
    KAFKA_SSL_KEY_PASSPHRASE_FILE: secretFile('client-key-passphrase', sec.pki.clientKeyPassphrase),
  };
}

function without(env: Record<string, string>, ...keys: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !keys.includes(k)));
}

/** The first `n` training images of the slice in the input wire format, with a top-level label. */
function labelledReferences(n: number): Message[] {
  const train = loadFashionMnist('train', [SLICE_FASHION_MNIST_DIR]);
  return Array.from({ length: n }, (_, i) => {
    const pixels = train.pixels.subarray(i * 784, (i + 1) * 784);
    const value = { id: `ref-${i}`, input: { features_b64: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength).toString('base64') }, label: train.labelNames[train.labels[i] ?? 0] };
    return { key: `ref-${i}`, value: JSON.stringify(value) };
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `qualm <args>` as a process in the repository root, with only `env` added to ours. */
function qualm(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAFKA_')));
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...base, QUALM_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r;
}

/** No password, in whole or trimmed, in anything a process printed. */
function assertNoSecret(text: string, what: string): void {
  for (const secret of [ALICE_PASSWORD, ALICE_PASSWORD.trim(), BOB_PASSWORD.trim(), 'wrong alice password']) {
    assert.ok(!text.includes(secret), `${what} printed a password`);
  }
}

/** A start refused for security: exit 78, the setting and the reason on stderr, and no kafkajs retry lines. */
function assertRefused(r: Run, what: string, line: RegExp): void {
  assert.equal(r.code, 78, `${what}: expected exit 78, got ${r.code}:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  assert.match(r.stderr, line, `${what}: stderr names the setting and the reason`);
  // kafkajs logs each failed connection and retry as an error; the check fails before any.
  assert.doesNotMatch(r.stdout, /"level":50,[^\n]*"area":"kafkajs"/, `${what}: kafkajs never got to connect or retry:\n${r.stdout.slice(-2000)}`);
  assertNoSecret(r.stdout + r.stderr, what);
}

async function highWatermark(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

test('SCRAM-SHA-512 over TLS, the password from a file: produce, build-index, worker, score, label and evaluate all connect', async () => {
  const t = uniqueWorkerTopics();
  const refsTopic = uniqueName('refs');
  const labels = uniqueName('labels');
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq, refsTopic, labels]);
  const env = { ...scramEnv(), ...workerTopicEnv(sec.scram, t), QUALM_BUNDLE_DIR: bundleDir, QUALM_LABELS_TOPIC: labels };
  const printed: string[] = [];
  const run = async (args: string[]): Promise<Run> => {
    const r = ok(await qualm(args, env), `qualm ${args.join(' ')}`);
    printed.push(r.stdout, r.stderr);
    return r;
  };

  // Labelled references on a topic (written over the plaintext listener), and a bundle built from that topic.
  await produce(kafka, refsTopic, labelledReferences(400));
  await run(['build-index', '--references', `topic:${refsTopic}`]);

  const scores = await TopicReader.start(kafka, t.scores);
  readers.push(scores);
  const worker = await WorkerProcess.start(env);
  workers.push(worker);
  await run(['produce', '--count', '40', '--rate', '0', '--malformed-share', '0', '--ood-share', '0.3']);
  const scored = await scores.waitForCount(40, 'score records');
  assert.equal(new Set(scores.json<ScoreRecord>().map((s) => s.id)).size, 40);
  assert.ok(scored.length >= 40);

  // The offline commands that read topics.
  const offline = (await run(['score', '--in', `topic:${t.input}`])).stdout.trim().split('\n');
  assert.equal(offline.length, 40);
  const review = await TopicReader.start(kafka, t.review);
  readers.push(review);
  await review.waitForCount(await highWatermark(t.review), 'review records');
  const withTruth = new Set(review.json<ReviewRecord>().filter((r) => typeof r.meta?.label === 'string' && r.meta.label !== '').map((r) => r.id)).size;
  const labelled = JSON.parse((await run(['label', '--simulate', '3'])).stdout.trim().split('\n').pop() ?? '{}') as { published?: number };
  assert.ok(withTruth > 0, 'some flagged samples carry their ground truth');
  assert.equal(labelled.published, Math.min(3, withTruth));
  await run(['build-index', '--labels']);
  const evaluated = (await run(['evaluate', '--references', `topic:${refsTopic}`, '--test', `topic:${refsTopic}`, '--json', '--out', join(bundleDir, 'eval')])).stdout;
  assert.match(evaluated.trim().split('\n').pop() ?? '', /^\{/);

  assert.deepEqual(await worker.stop('SIGTERM'), { code: 0, signal: null });
  assert.match(worker.log(), /"event":"bundle_loaded"/);
  assertNoSecret(worker.log(), 'the worker');
  assertNoSecret(printed.join(''), 'the CLI commands');
});

test('SASL PLAIN over TLS (the password in the environment, spaces and quotes kept) and mutual TLS (an encrypted client key) connect', async () => {
  for (const [name, env] of [
    ['plain', plainEnv()],
    ['mtls', mtlsEnv()],
  ] as const) {
    const topic = uniqueName(`in-${name}`);
    await createTopics(kafka, [topic]);
    ok(await qualm(['produce', '--count', '5', '--rate', '0', '--malformed-share', '0', '--topic', topic], env), `produce over ${name}`);
    assert.equal(await highWatermark(topic), 5, `5 messages over ${name}`);
  }
});

test('a wrong password stops the start at once, naming the setting and the user, never the password', async () => {
  const env = workerTopicEnv(sec.scram, uniqueWorkerTopics());
  const wrong = secretFile('wrong-password', 'wrong alice password');
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...scramEnv(wrong) }),
    'produce, wrong SCRAM password',
    /KAFKA_SASL_PASSWORD_FILE: authentication failed for user alice \(SCRAM-SHA-512\)/,
  );
  // The same password without its spaces is another password: nothing trimmed it on the way.
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...scramEnv(secretFile('trimmed-password', ALICE_PASSWORD.trim())) }),
    'produce, the SCRAM password trimmed',
    /KAFKA_SASL_PASSWORD_FILE: authentication failed for user alice \(SCRAM-SHA-512\)/,
  );
  // A file with a final line break: refused, and the message says why it may be.
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...scramEnv(secretFile('newline-password', `${ALICE_PASSWORD}\n`)) }),
    'produce, the SCRAM password file ending in a line break',
    /ends with a line break, which is used as part of the password/,
  );
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...plainEnv(BOB_PASSWORD.trim()), KAFKA_BROKERS: sec.plain.join(',') }),
    'produce, wrong PLAIN password',
    /KAFKA_SASL_PASSWORD: authentication failed for user bob \(PLAIN\)/,
  );
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  assertRefused(
    await qualm(['worker'], { ...workerTopicEnv(sec.scram, t), ...scramEnv(wrong), QUALM_BUNDLE_DIR: bundleDir, QUALM_METRICS_PORT: '0', QUALM_METRICS_HOST: '127.0.0.1' }),
    'worker, wrong SCRAM password',
    /KAFKA_SASL_PASSWORD_FILE: authentication failed for user alice \(SCRAM-SHA-512\)/,
  );
  assertRefused(
    await qualm(['build-index', '--references', `topic:${t.input}`], { ...scramEnv(wrong), QUALM_BUNDLE_DIR: join(bundleDir, 'never') }),
    'build-index --references topic:, wrong SCRAM password',
    /KAFKA_SASL_PASSWORD_FILE: authentication failed for user alice/,
  );
});

test('an untrusted broker certificate, or no client certificate for mutual TLS, stops the start at once naming the setting', async () => {
  const t = uniqueWorkerTopics();
  await createTopics(kafka, [t.input, t.review, t.scores, t.dlq]);
  const env = workerTopicEnv(sec.scram, t);
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...scramEnv(), KAFKA_SSL_CA_FILE: sec.pki.otherCaCert }),
    'produce, another CA',
    /KAFKA_SSL_CA_FILE: the broker's certificate is not trusted by .*other-ca\.crt/,
  );
  const systemCas = without(scramEnv(), 'KAFKA_SSL_CA_FILE');
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...systemCas }),
    'produce, the system CAs',
    /KAFKA_SSL: the broker's certificate is not trusted by the system's CAs \(set KAFKA_SSL_CA_FILE/,
  );
  assertRefused(
    await qualm(['worker'], { ...env, ...scramEnv(), KAFKA_SSL_CA_FILE: sec.pki.otherCaCert, QUALM_BUNDLE_DIR: bundleDir, QUALM_METRICS_PORT: '0', QUALM_METRICS_HOST: '127.0.0.1' }),
    'worker, another CA',
    /KAFKA_SSL_CA_FILE: the broker's certificate is not trusted/,
  );
  const noClientCert = without(mtlsEnv(), 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'KAFKA_SSL_KEY_PASSPHRASE_FILE');
  assertRefused(
    await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...noClientCert }),
    'produce, mTLS without a client certificate',
    /KAFKA_SSL_CERT_FILE: the broker at \S+ requires a client certificate/,
  );
  // A value and its file together: refused before any connection, both keys named.
  const both = await qualm(['produce', '--count', '1', '--rate', '0'], { ...env, ...scramEnv(), KAFKA_SASL_PASSWORD: ALICE_PASSWORD });
  assert.equal(both.code, 78);
  assert.match(both.stderr, /KAFKA_SASL_PASSWORD_FILE: is set together with KAFKA_SASL_PASSWORD/);
  assertNoSecret(both.stderr + both.stdout, 'both set');
});
