import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pipeline, started, stagesToGroup, type PipelineJob, type Started } from '../../../src/stream/pipeline.js';

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

test('stagesToGroup() types four stages end to end into the group stage, and a job of the wrong depth is refused', async () => {
  const seen: unknown[] = [];
  const four = stagesToGroup(
    () => Promise.resolve(1),
    (n: number) => Promise.resolve(`${n + 1}`),
    (s: string) => Promise.resolve([s]),
    (a: string[]) => Promise.resolve(a.length),
  );
  const p = new Pipeline<number>(10, 4, (ready) => {
    seen.push(ready.map((r) => r.value));
    return Promise.resolve();
  });
  await p.admit({ size: 1, stages: four, dropped: () => false, failed: () => undefined });
  assert.deepEqual(seen, [[1]]);
  assert.throws(() => new Pipeline(10, 3).admit({ size: 1, stages: four, dropped: () => false, failed: () => undefined }), /4 stages in a pipeline of 3/);
});

/** Two per-job stages of `ms` each (the second returns the job's name), for a pipeline of depth 2 with a group stage. */
function groupedJob(trace: Trace, name: string, opts: { ms?: number; size?: number; dropped?: () => boolean; onFail?: (e: unknown) => void } = {}): PipelineJob {
  const ms = opts.ms ?? 2;
  return {
    size: opts.size ?? 1,
    stages: [
      async () => {
        trace.events.push(`${name}:a`);
        await tick(ms);
      },
      async () => {
        trace.events.push(`${name}:b`);
        await tick(ms);
        return name;
      },
    ],
    dropped: opts.dropped ?? (() => false),
    failed: opts.onFail ?? (() => undefined),
  };
}

test('the group stage gets, in admission order, every job that became ready while the group before it ran', async () => {
  const trace: Trace = { events: [] };
  const groups: string[][] = [];
  const p = new Pipeline<string>(100, 2, async (ready) => {
    groups.push(ready.map((r) => r.value));
    trace.events.push(`group:${ready.map((r) => r.value).join(',')}:start`);
    await tick(30); // a slow round trip: the jobs behind the first pile up meanwhile
    trace.events.push(`group:${ready.map((r) => r.value).join(',')}:end`);
  });
  const names = ['a', 'b', 'c', 'd', 'e'];
  await Promise.all(names.map((n) => p.admit(groupedJob(trace, n))));
  assert.deepEqual(groups.flat(), names, 'every job once, in order');
  assert.deepEqual(groups[0], ['a']);
  assert.ok(groups.length < names.length, `grouped: ${JSON.stringify(groups)}`);
  // One group at a time: each starts after the one before it ended.
  const e = trace.events.filter((x) => x.startsWith('group:'));
  for (let i = 1; i < e.length; i += 2) assert.match(e[i] as string, /:end$/);
  assert.equal(p.inFlight, 0);
});

test('a job counts as in flight until its group is done, and idle() waits for the group stage', async () => {
  const trace: Trace = { events: [] };
  let release: () => void = () => undefined;
  const p = new Pipeline<string>(10, 2, () => new Promise<void>((r) => (release = r)));
  const end = p.admit(groupedJob(trace, 'a', { size: 4 }));
  await tick(20);
  assert.equal(p.inFlight, 4, 'through its stages but not yet written');
  let idle = false;
  const waiting = p.idle().then(() => (idle = true));
  await tick(5);
  assert.equal(idle, false);
  release();
  await Promise.all([end, waiting]);
  assert.equal(p.inFlight, 0);
});

test('a failed group fails each of its jobs once; a job dropped before its group is left out of it', async () => {
  const trace: Trace = { events: [] };
  const failed: string[] = [];
  const groups: string[][] = [];
  let calls = 0;
  let rewound = false;
  const p = new Pipeline<string>(100, 2, async (ready) => {
    groups.push(ready.map((r) => r.value));
    calls++;
    await tick(20);
    if (calls === 1) {
      rewound = true;
      throw new Error('publish failed');
    }
  });
  await Promise.all([
    p.admit(groupedJob(trace, 'a', { onFail: () => failed.push('a') })),
    // b is ready while a's group runs, but a's failure rewinds the partition: b is dropped.
    p.admit(groupedJob(trace, 'b', { dropped: () => rewound, onFail: () => failed.push('b') })),
    p.admit(groupedJob(trace, 'c', { onFail: () => failed.push('c') })),
  ]);
  assert.deepEqual(failed, ['a']);
  assert.deepEqual(groups, [['a'], ['c']]);
  assert.equal(p.inFlight, 0);
});

test('started(): a stage can hand its thread work on without waiting, and a failure reaches the next stage, not unhandledRejection', async () => {
  let unhandled = 0;
  const onUnhandled = (): void => void unhandled++;
  process.on('unhandledRejection', onUnhandled);
  try {
    const failures: unknown[] = [];
    const p = new Pipeline<number>(100, 2, () => Promise.resolve());
    const slowFailure = started(tick(20).then(() => Promise.reject(new Error('inference failed'))));
    await p.admit({
      size: 1,
      stages: [() => Promise.resolve(slowFailure), async (s: Started<number>) => await s.result],
      dropped: () => false,
      failed: (err) => failures.push(err),
    });
    // A job dropped before anyone awaits its started work: the rejection stays handled.
    const orphan = started(Promise.reject(new Error('never awaited')));
    assert.ok(orphan.result instanceof Promise);
    await tick(10);
    assert.equal(failures.length, 1);
    assert.match(String(failures[0]), /inference failed/);
    assert.equal(unhandled, 0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
