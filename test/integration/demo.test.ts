// Regression: Ctrl-C on `npm run demo` reached the Kafka broker too (same process group), which
// died under a worker that was still draining; the demo then hung. Now the demo stops the
// worker and the broker itself, in order, prints its summary and leaves no process behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SLICE_FASHION_MNIST_DIR } from '../../src/datasets/index.js';
import { waitFor } from '../helpers/kafka.js';

const bundleDir = mkdtempSync(join(tmpdir(), 'qualm-demo-bundle-'));
after(() => rmSync(bundleDir, { recursive: true, force: true }));

function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('Ctrl-C stops the demo in order: summary printed, exit 0, no broker or worker left', { timeout: 240_000 }, async () => {
  // A process group of its own, like a terminal's foreground job; the slice keeps the bundle build short.
  const demo = spawn(process.execPath, ['bin/qualm.js', 'demo', '--rate', '300'], {
    env: { ...process.env, QUALM_BUNDLE_DIR: bundleDir, QUALM_FASHION_MNIST_DIR: SLICE_FASHION_MNIST_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => demo.once('exit', (code) => res(code)));
  const pid = demo.pid as number;

  await waitFor(() => /\] sent \d+ \| scored [1-9]\d* /.test(out), `the demo scoring (output so far:\n${out})`, 180_000);
  const spawned = children(pid);
  assert.ok(spawned.length >= 2, `the demo runs a broker and a worker (children: ${spawned.join(', ')})`);

  process.kill(-pid, 'SIGINT');
  const code = await exited;
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /worker drained and exited with code 0/);
  assert.match(out, /stopped by signal/);
  const last = out.trim().split('\n').pop() ?? '';
  const summary = JSON.parse(last) as { consumed: number; dlq: number; flagged: number };
  assert.ok(summary.consumed > 0 && summary.flagged >= 0);
  await waitFor(() => spawned.every((p) => !alive(p)), `children ${spawned.join(', ')} to be gone`, 20_000);
});
