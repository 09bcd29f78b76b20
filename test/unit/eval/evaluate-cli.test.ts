import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

test('qualm evaluate: --setup and --references are exclusive, own data needs --references and --test, and the flags do not mix (exit 2)', () => {
  const both = run(['evaluate', '--setup', 'fashion-mnist', '--references', 'refs.jsonl', '--test', 'test.jsonl']);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--setup and --references are exclusive/);
  const noTest = run(['evaluate', '--references', 'refs.jsonl']);
  assert.equal(noTest.status, 2);
  assert.match(noTest.stderr, /needs both --references SPEC and --test SPEC/);
  const onlyPredictions = run(['evaluate', '--predictions', 'p.jsonl']);
  assert.equal(onlyPredictions.status, 2);
  assert.match(onlyPredictions.stderr, /needs both --references SPEC and --test SPEC/);
  const models = run(['evaluate', '--references', 'refs.jsonl', '--test', 'test.jsonl', '--models', 'a.onnx']);
  assert.equal(models.status, 2);
  assert.match(models.stderr, /--models belong to --setup; with --references use --model/);
  const setupWithModel = run(['evaluate', '--setup', 'imdb', '--model', 'a.onnx']);
  assert.equal(setupWithModel.status, 2);
  assert.match(setupWithModel.stderr, /--model go with --references, not --setup/);
  assert.match(run(['evaluate', '--help']).stdout, /--predictions PATH/);
});

test('every flag docs/evaluation.md names in "Your own data" is in qualm evaluate --help', () => {
  const doc = readFileSync('docs/evaluation.md', 'utf8');
  const start = doc.indexOf('## Your own data');
  assert.ok(start >= 0, 'the section exists');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const flags = new Set(section.match(/--[a-z][a-z-]+/g) ?? []);
  assert.ok(flags.has('--predictions') && flags.has('--skip-invalid'));
  const help = run(['evaluate', '--help']).stdout;
  for (const flag of flags) assert.ok(help.includes(flag), `${flag} is in the doc but not in --help`);
});
