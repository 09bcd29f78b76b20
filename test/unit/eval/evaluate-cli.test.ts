import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const run = (args: string[]) => spawnSync(process.execPath, ['bin/qualm.js', ...args], { encoding: 'utf8' });

test('qualm evaluate has --help and is listed in the main help', () => {
  const r = run(['evaluate', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^qualm evaluate: /);
  assert.match(r.stdout, /--setup NAME/);
  assert.match(run(['--help']).stdout, /^ {2}evaluate /m);
});

test('qualm evaluate refuses an unknown setup and bad limits as usage errors (exit 2)', () => {
  const bad = run(['evaluate', '--setup', 'imagenet']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--setup must be fashion-mnist/);
  assert.equal(run(['evaluate', '--setup', 'fashion-mnist', '--limit-test', 'many']).status, 2);
});
