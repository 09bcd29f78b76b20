import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pipeline, stages, type PipelineJob } from '../../../src/stream/pipeline.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Trace {
  events: string[];
}

/** A job whose stages record when they start and end, each taking `ms`. */
function job(trace: Trace, name: string, opts: { size?: number; ms?: number; failAt?: 'prepare' | 'finish' | 'publish'; dropped?: () => boolean; onFail?: (e: unknown) => void } = {}): PipelineJob {
  const ms = opts.ms ?? 5;
  const stage = async (s: 'prepare' | 'finish' | 'publish', v: string): Promise<string> => {
    trace.events.push(`${name}:${s}:start`);
    await tick(ms);
    if (opts.failAt === s) throw new Error(`${name} ${s} failed`);
    trace.events.push(`${name}:${s}:end`);
    return v + s[0];
  };
  return {
    size: opts.size ?? 1,
    // Three stages of the test's own, in a pipeline of depth 3.
    stages: [() => stage('prepare', ''), (p: string) => stage('finish', p), async (f: string) => void (await stage('publish', f))],
    dropped: opts.dropped ?? (() => false),
    failed: opts.onFail ?? (() => undefined),
  };
}

test('stages overlap across jobs, but each stage runs its jobs one at a time in admission order', async () => {
  const trace: Trace = { events: [] };
  const p = new Pipeline(100, 3);
  const ends = ['a', 'b', 'c'].map((n) => p.admit(job(trace, n)));
  await Promise.all(ends);
  const e = trace.events;
  const at = (x: string): number => e.indexOf(x);
  for (const s of ['prepare', 'finish', 'publish']) {
    assert.ok(at(`a:${s}:end`) < at(`b:${s}:start`), `${s}: a before b`);
    assert.ok(at(`b:${s}:end`) < at(`c:${s}:start`), `${s}: b before c`);
  }
  // b is prepared while a is finished: the point of the pipeline.
  assert.ok(at('b:prepare:start') < at('a:finish:end'), e.join(' '));
  assert.ok(at('a:publish:end') < at('c:publish:start'));
});

test('a failing stage calls failed once, skips the job\'s later stages, and the jobs after it still run', async () => {
  const trace: Trace = { events: [] };
  const p = new Pipeline(100, 3);
  const failures: unknown[] = [];
  await Promise.all([
    p.admit(job(trace, 'a')),
    p.admit(job(trace, 'b', { failAt: 'finish', onFail: (err) => failures.push(err) })),
    p.admit(job(trace, 'c')),
  ]);
  assert.equal(failures.length, 1);
  assert.match(String(failures[0]), /b finish failed/);
  assert.ok(!trace.events.includes('b:publish:start'));
  assert.ok(trace.events.includes('c:publish:end'));
  assert.equal(p.inFlight, 0);
});

test('a job dropped after it was admitted (its partition rewound) runs no further stage', async () => {
  const trace: Trace = { events: [] };
  const p = new Pipeline(100, 3);
  let rewound = false;
  await Promise.all([
    p.admit(job(trace, 'a', { failAt: 'prepare', onFail: () => (rewound = true) })),
    p.admit(job(trace, 'b', { dropped: () => rewound })),
  ]);
  // b's prepare started before a failed; nothing of b runs once a has failed.
  assert.ok(!trace.events.includes('b:finish:start'), trace.events.join(' '));
  assert.ok(!trace.events.includes('b:publish:start'));
});

test('the bound: room() waits until enough messages have left, idle() until all have', async () => {
  const trace: Trace = { events: [] };
  const p = new Pipeline(10, 3);
  assert.ok(p.hasRoom(50), 'an empty pipeline always lets one job in');
  void p.admit(job(trace, 'a', { size: 6, ms: 20 }));
  assert.equal(p.inFlight, 6);
  assert.ok(p.hasRoom(4));
  assert.ok(!p.hasRoom(5));
  let roomAt = -1;
  const waited = p.room(5).then(() => (roomAt = trace.events.length));
  await waited;
  assert.ok(trace.events.includes('a:publish:end'), 'room came when a left');
  assert.ok(roomAt > 0);
  assert.ok(p.hasRoom(5));
  void p.admit(job(trace, 'b', { size: 3 }));
  await p.idle();
  assert.equal(p.inFlight, 0);
  assert.ok(trace.events.includes('b:publish:end'));
});

test('stages() types four stages end to end, and a job of the wrong depth is refused', async () => {
  const seen: unknown[] = [];
  const four = stages(
    () => Promise.resolve(1),
    (n: number) => Promise.resolve(`${n + 1}`),
    (s: string) => Promise.resolve([s]),
    (a: string[]) => {
      seen.push(a);
      return Promise.resolve();
    },
  );
  const p = new Pipeline(10);
  await p.admit({ size: 1, stages: four, dropped: () => false, failed: () => undefined });
  assert.deepEqual(seen, [['2']]);
  assert.throws(() => new Pipeline(10, 3).admit({ size: 1, stages: four, dropped: () => false, failed: () => undefined }), /4 stages in a pipeline of 3/);
});
