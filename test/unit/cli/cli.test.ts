import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['bin/qualm.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

test('every command has --help', () => {
  for (const cmd of ['worker', 'build-index', 'produce', 'demo', 'probe', 'evaluate', 'score', 'model']) {
    const r = run([cmd, '--help']);
    assert.equal(r.status, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^qualm ${cmd}: `));
    assert.match(r.stdout, /Usage:/);
  }
  const top = run(['--help']);
  assert.equal(top.status, 0);
  for (const cmd of ['worker', 'build-index', 'produce', 'demo', 'probe', 'evaluate', 'score', 'model']) assert.match(top.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

test('a bad configuration stops the start with exit 78 and names the key', () => {
  const r = run(['worker'], { QUALM_FLAG_THRESHOLD: 'high', QUALM_METRICS_PORT: '-1' });
  assert.equal(r.status, 78);
  assert.match(r.stderr, /QUALM_FLAG_THRESHOLD: expected a number \(got "high"\)/);
  assert.match(r.stderr, /QUALM_METRICS_PORT/);
});

test('QUALM_INPUT_FORMAT=image with a model that does not take images stops the start (exit 78), before any broker is reached', () => {
  const r = run(['worker'], { QUALM_INPUT_FORMAT: 'image', QUALM_MODEL_PATH: 'models/fmnist-simclr.onnx', KAFKA_BROKERS: '127.0.0.1:1' });
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /QUALM_INPUT_FORMAT: image \(raw image messages\) needs an image model; models\/fmnist-simclr\.onnx takes features/);
});

test('unknown commands and flags are usage errors (exit 2)', () => {
  assert.equal(run(['frobnicate']).status, 2);
  const r = run(['produce', '--speed', '3']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--speed/);
  const s = run(['produce', '--ood-share', '2']);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /--ood-share must be a number in \[0, 1\]/);
});
