import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OPTIONS, loadConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'QUALM_CONFIG_INVALID');
    return err.problems.map((p) => p.key);
  }
  assert.fail('expected a ConfigError');
}

test('defaults give a complete, valid configuration', () => {
  const c = loadConfig({});
  assert.deepEqual(c.kafkaBrokers, ['127.0.0.1:9092']);
  assert.equal(c.k, 20);
  assert.equal(c.flagPolicy, 'threshold');
  assert.equal(c.scoresTopic, undefined);
  assert.equal(c.kafkaSsl, false);
  for (const name of Object.keys(OPTIONS)) assert.ok(name in c, `missing ${name}`);
});

test('environment values are parsed into their types', () => {
  const c = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', QUALM_K: '7', QUALM_EF_SEARCH: '50', KAFKA_SSL: 'yes', QUALM_SCORES_TOPIC: 'scores', QUALM_FLAG_THRESHOLD: '0.25' });
  assert.deepEqual(c.kafkaBrokers, ['a:1', 'b:2']);
  assert.equal(c.k, 7);
  assert.equal(c.kafkaSsl, true);
  assert.equal(c.scoresTopic, 'scores');
  assert.equal(c.flagThreshold, 0.25);
});

test('every bad value is reported at once, by its environment variable name', () => {
  const keys = problems({ QUALM_K: 'ten', QUALM_FLAG_THRESHOLD: '1.5', KAFKA_BROKERS: 'nohost', QUALM_FLAG_POLICY: 'random', QUALM_REVIEW_TOPIC: 'bad topic!' });
  assert.deepEqual(keys.sort(), ['KAFKA_BROKERS', 'QUALM_FLAG_POLICY', 'QUALM_FLAG_THRESHOLD', 'QUALM_K', 'QUALM_REVIEW_TOPIC']);
});

test('the message names the key and the expected form', () => {
  assert.throws(() => loadConfig({ QUALM_METRICS_PORT: '99999' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /QUALM_METRICS_PORT: .*<=65535.*"99999"/);
    return true;
  });
});

test('rules that span options', () => {
  assert.deepEqual(problems({ QUALM_K: '50', QUALM_EF_SEARCH: '20' }), ['QUALM_EF_SEARCH']);
  assert.deepEqual(problems({ QUALM_SESSION_TIMEOUT_MS: '9000', QUALM_HEARTBEAT_INTERVAL_MS: '5000' }), ['QUALM_HEARTBEAT_INTERVAL_MS']);
  assert.deepEqual(problems({ KAFKA_SASL_MECHANISM: 'plain' }).sort(), ['KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME']);
  assert.deepEqual(problems({ QUALM_FLAG_POLICY: 'target_rate', QUALM_TARGET_FLAG_RATE: '0' }), ['QUALM_TARGET_FLAG_RATE']);
  assert.deepEqual(problems({ QUALM_DLQ_TOPIC: 'qualm.samples' }), ['QUALM_DLQ_TOPIC']);
});

test('a config file sets options, the environment wins, unknown keys are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qualm-config-'));
  const file = join(dir, 'qualm.json');
  writeFileSync(file, JSON.stringify({ QUALM_K: 9, QUALM_GROUP_ID: 'from-file', KAFKA_BROKERS: ['x:1', 'y:2'] }));
  const c = loadConfig({ QUALM_CONFIG_FILE: file, QUALM_GROUP_ID: 'from-env' });
  assert.equal(c.k, 9);
  assert.equal(c.groupId, 'from-env');
  assert.deepEqual(c.kafkaBrokers, ['x:1', 'y:2']);
  writeFileSync(file, JSON.stringify({ QUALM_KK: 1 }));
  assert.deepEqual(problems({ QUALM_CONFIG_FILE: file }), [`${file}:QUALM_KK`]);
  writeFileSync(file, '{not json');
  assert.deepEqual(problems({ QUALM_CONFIG_FILE: file }), ['QUALM_CONFIG_FILE']);
});

test('QUALM_BUNDLE_URL: unset by default, an http(s) URL when set, anything else refused by name', () => {
  assert.equal(loadConfig({}).bundleUrl, undefined);
  assert.equal(loadConfig({ QUALM_BUNDLE_URL: 'https://bundles.example.com/qualm/' }).bundleUrl, 'https://bundles.example.com/qualm/');
  assert.equal(loadConfig({ QUALM_BUNDLE_URL: '' }).bundleUrl, undefined);
  for (const bad of ['ftp://example.com/b', 'file:///var/bundles', 'bundles.example.com', 'http://']) {
    assert.deepEqual(problems({ QUALM_BUNDLE_URL: bad }), ['QUALM_BUNDLE_URL'], bad);
  }
  assert.throws(() => loadConfig({ QUALM_BUNDLE_URL: 'ftp://x/' }), /QUALM_BUNDLE_URL: expected an http:\/\/ or https:\/\/ URL/);
  assert.deepEqual(problems({ QUALM_BUNDLE_DOWNLOAD_TIMEOUT_MS: '5' }), ['QUALM_BUNDLE_DOWNLOAD_TIMEOUT_MS']);
});

test('regression: a misspelt QUALM_* environment variable is refused by name (it used to be ignored and its default used)', () => {
  assert.deepEqual(problems({ QUALM_FLAG_TRESHOLD: '0.5' }), ['QUALM_FLAG_TRESHOLD']);
  assert.throws(() => loadConfig({ QUALM_FLAG_TRESHOLD: '0.5' }), /QUALM_FLAG_TRESHOLD: not a qualm setting \(did you mean QUALM_FLAG_THRESHOLD\?\)/);
  assert.throws(() => loadConfig({ QUALM_SOMETHING_ELSE_ENTIRELY: '1' }), (err: Error) => /QUALM_SOMETHING_ELSE_ENTIRELY: not a qualm setting$/m.test(err.message));
  // Variables qualm reads outside the settings, and other prefixes, are left alone.
  assert.equal(loadConfig({ QUALM_FASHION_MNIST_DIR: '/data', QUALM_KAFKA_PORT: '9092', KAFKA_FOO: 'x', PATH: '/bin' }).k, loadConfig({}).k);
});
