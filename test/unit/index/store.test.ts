import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededRandom } from '../../../src/cli/sample-mix.js';
import { normalizeRows } from '../../../src/encoder/index.js';
import { isQualmError } from '../../../src/errors.js';
import {
  BundleRefresher,
  HttpBundleStore,
  LocalBundleStore,
  buildBundle,
  loadBundle,
  loadCurrentFromStore,
  movePointer,
  type HttpBundleStoreOptions,
  type RefreshOutcome,
  type StoreEvent,
} from '../../../src/index/index.js';
import { StaticStore } from '../../helpers/http-store.js';

const root = mkdtempSync(join(tmpdir(), 'qualm-store-'));
const storeDir = join(root, 'store');
const SHA = 'e'.repeat(64);
const LOAD = { efSearch: 50, expectModelSha256: SHA };
let server: StaticStore;
let caches = 0;

async function build(dir: string, version: string, seed: number, n = 400): Promise<void> {
  const rnd = seededRandom(seed);
  const emb = normalizeRows(Float32Array.from({ length: n * 8 }, () => rnd() - 0.5), 8);
  await buildBundle(
    dir,
    {
      embeddings: emb,
      dim: 8,
      ids: Array.from({ length: n }, (_, i) => `${version}-${i}`),
      labels: Array.from({ length: n }, (_, i) => i % 3),
      labelNames: ['a', 'b', 'c'],
      model: { name: 'm', version: '1', sha256: SHA },
      source: {},
      k: 5,
      densityWeight: 1,
    },
    { version },
  );
}

function cache(): string {
  return join(root, `cache-${++caches}`);
}

function store(dir: string, opts: HttpBundleStoreOptions = {}, url = server.url): HttpBundleStore {
  return new HttpBundleStore(url, dir, { baseDelayMs: 5, maxDelayMs: 20, ...opts });
}

/** A copy of version v1 under another name, with `edit` applied to one of its files (in the store only). */
function variant(version: string, file: string, edit: (text: string) => string): void {
  cpSync(join(storeDir, 'v1'), join(storeDir, version), { recursive: true });
  const path = join(storeDir, version, file);
  writeFileSync(path, edit(readFileSync(path, 'utf8')));
  if (file !== 'manifest.json') {
    const manifest = join(storeDir, version, 'manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"version": "v1"', `"version": "${version}"`).replace('"version":"v1"', `"version":"${version}"`));
  }
}

function assertCode(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isQualmError(err), String(err));
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  };
}

before(async () => {
  await build(storeDir, 'v1', 1);
  server = await StaticStore.start(storeDir);
});

after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

test('reads the pointer; no pointer is undefined; a pointer that names no version is refused', async () => {
  assert.equal(await store(cache()).readPointer(), 'v1');
  assert.equal(await store(cache(), {}, `${server.url}nowhere`).readPointer(), undefined);
  mkdirSync(join(storeDir, 'bad'), { recursive: true });
  writeFileSync(join(storeDir, 'bad', 'CURRENT'), '../../etc\n');
  await assert.rejects(store(cache(), {}, `${server.url}bad/`).readPointer(), assertCode('QUALM_BUNDLE_INVALID', /does not name a bundle version/));
  writeFileSync(join(storeDir, 'bad', 'CURRENT'), '..\n');
  await assert.rejects(store(cache(), {}, `${server.url}bad/`).readPointer(), assertCode('QUALM_BUNDLE_INVALID'));
  await assert.rejects(store(cache()).materialize('..'), assertCode('QUALM_BUNDLE_INVALID'));
  assert.equal(await new LocalBundleStore(storeDir).readPointer(), 'v1');
});

test('downloads a whole version, verified, into <cache>/<version>/; loadBundle loads it', async () => {
  const dir = cache();
  const events: StoreEvent[] = [];
  const s = store(dir, { onEvent: (e) => events.push(e) });
  const rootDir = await s.materialize('v1');
  assert.equal(rootDir, dir);
  assert.deepEqual(readdirSync(dir), ['v1'], 'no partial directory or lock left behind');
  for (const f of readdirSync(join(storeDir, 'v1'))) assert.deepEqual(readFileSync(join(dir, 'v1', f)), readFileSync(join(storeDir, 'v1', f)), f);
  const snap = await loadBundle(rootDir, 'v1', LOAD);
  assert.equal(snap.version, 'v1');
  assert.equal(snap.count, 400);
  assert.ok(events.some((e) => e.kind === 'downloaded' && e.version === 'v1' && e.bytes > 0 && e.resumed === 0));
});

test('a download cut off mid-file resumes with a Range request and succeeds', async () => {
  const dir = cache();
  const path = '/v1/index.hnsw';
  server.faults.cutAfter.set(path, 1000);
  const events: StoreEvent[] = [];
  await store(dir, { onEvent: (e) => events.push(e) }).materialize('v1');
  const reqs = server.requestsFor(path).slice(-2);
  assert.equal(reqs[0]?.range, undefined);
  assert.equal(reqs[0]?.status, 200);
  assert.equal(reqs[1]?.range, 'bytes=1000-', 'resumed where the cut left off');
  assert.equal(reqs[1]?.status, 206);
  assert.ok(events.some((e) => e.kind === 'retry' && e.url.endsWith(path)));
  assert.ok(events.some((e) => e.kind === 'downloaded' && e.resumed === 1));
  await loadBundle(dir, 'v1', LOAD);
});

test('a server that ignores Range: the file starts over, and the download still succeeds', async (t) => {
  t.after(() => {
    server.faults.ignoreRange = false;
  });
  const dir = cache();
  const path = '/v1/index.hnsw';
  server.faults.ignoreRange = true;
  server.faults.cutAfter.set(path, 1000);
  await store(dir).materialize('v1');
  const reqs = server.requestsFor(path).slice(-2);
  assert.equal(reqs[1]?.range, 'bytes=1000-');
  assert.equal(reqs[1]?.status, 200, 'whole file sent again');
  await loadBundle(dir, 'v1', LOAD);
});

test('a file whose checksum differs from the manifest is refused and leaves nothing that looks complete', async () => {
  variant('v-bad', 'ids.json', (text) => text.replace('v1-5"', 'v1-X"'));
  const dir = cache();
  await assert.rejects(store(dir).materialize('v-bad'), assertCode('QUALM_BUNDLE_INVALID', /bundle v-bad: ids\.json checksum mismatch/));
  assert.deepEqual(readdirSync(dir), [], 'no version, partial or lock directory');
  // The refresher refuses it (remembered) and keeps serving what it had.
  await movePointer(storeDir, 'v-bad');
  try {
    const outcomes: RefreshOutcome[] = [];
    const s = store(dir);
    const r = new BundleRefresher(s, await loadBundle(await s.materialize('v1'), 'v1', LOAD), { intervalMs: 0, load: LOAD, onOutcome: (o) => outcomes.push(o) });
    const o = await r.check();
    assert.equal(o.kind, 'refused');
    assert.match(o.kind === 'refused' ? o.reason : '', /ids\.json checksum mismatch/);
    const before = server.requests.length;
    assert.equal((await r.check()).kind, 'unchanged', 'not downloaded again');
    assert.equal(server.requests.length, before + 1, 'only the pointer was read');
    assert.equal(r.current().version, 'v1');
    await r.stop();
  } finally {
    await movePointer(storeDir, 'v1');
  }
});

test('5xx answers are retried with backoff; a store that keeps failing gives up with a retriable QUALM_BUNDLE_DOWNLOAD_FAILED', async () => {
  const dir = cache();
  server.faults.statuses.set('/v1/manifest.json', [503, 500]);
  server.faults.statuses.set('/v1/ids.json', [502]);
  const events: StoreEvent[] = [];
  await store(dir, { onEvent: (e) => events.push(e) }).materialize('v1');
  assert.deepEqual(
    events.filter((e) => e.kind === 'retry').map((e) => (e.kind === 'retry' ? [new URL(e.url).pathname, e.attempt] : [])),
    [
      ['/v1/manifest.json', 1],
      ['/v1/manifest.json', 2],
      ['/v1/ids.json', 1],
    ],
  );
  await loadBundle(dir, 'v1', LOAD);

  const down = cache();
  server.faults.statuses.set('/v1/manifest.json', [503, 503, 503]);
  await assert.rejects(store(down, { maxAttempts: 3 }).materialize('v1'), (err) => {
    assertCode('QUALM_BUNDLE_DOWNLOAD_FAILED', /gave up after 3 attempts: .*HTTP 503/)(err);
    assert.equal(isQualmError(err) && err.retriable, true);
    return true;
  });
  assert.ok(!existsSync(join(down, 'v1')));
  // A 404 is not retried.
  await assert.rejects(store(cache()).materialize('v-none'), assertCode('QUALM_BUNDLE_DOWNLOAD_FAILED', /404/));
  // Nobody listening: a network error, retried, then given up.
  const gone = await StaticStore.start(storeDir);
  await gone.close();
  await assert.rejects(store(cache(), { maxAttempts: 2 }, gone.url).readPointer(), assertCode('QUALM_BUNDLE_DOWNLOAD_FAILED', /gave up after 2 attempts: .*fetch failed/));
});

test('an unknown bundle format version is refused before anything is downloaded', async () => {
  variant('v-future', 'manifest.json', (text) => text.replace('"format_version": 1', '"format_version": 99').replace('"version": "v1"', '"version": "v-future"'));
  const dir = cache();
  await assert.rejects(store(dir).materialize('v-future'), assertCode('QUALM_BUNDLE_INVALID', /bundle v-future: bundle format version 99 is not supported: this qualm reads formats 1, 2/));
  assert.deepEqual(
    server.requests.filter((r) => r.path.startsWith('/v-future/')).map((r) => r.path),
    ['/v-future/manifest.json'],
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a version already complete in the cache is not downloaded again', async () => {
  const dir = cache();
  await store(dir).materialize('v1');
  const before = server.requests.length;
  await store(dir).materialize('v1');
  const snap = await loadCurrentFromStore(store(dir), LOAD);
  assert.equal(snap.version, 'v1');
  assert.deepEqual(server.requests.slice(before).map((r) => r.path), ['/CURRENT'], 'only the pointer');
});

test('a cancelled download stops with QUALM_ABORTED and is resumed by the next one', async () => {
  const dir = cache();
  const ac = new AbortController();
  server.faults.statuses.set('/v1/ids.json', [503]);
  const s = store(dir, { baseDelayMs: 5_000, maxDelayMs: 5_000, random: () => 1, onEvent: (e) => e.kind === 'retry' && ac.abort() });
  await assert.rejects(s.materialize('v1', ac.signal), assertCode('QUALM_ABORTED'));
  assert.ok(!existsSync(join(dir, 'v1')));
  assert.ok(existsSync(join(dir, '.partial-v1')), 'what was fetched is kept for the next try');
  await store(dir).materialize('v1');
  assert.deepEqual(readdirSync(dir), ['v1']);
});

test('the refresher follows an HTTP store; the cache keeps the newest versions and always the served one', async () => {
  const dir = cache();
  const s = store(dir, { retain: 2 });
  const outcomes: RefreshOutcome[] = [];
  const r = new BundleRefresher(s, await loadCurrentFromStore(s, LOAD), { intervalMs: 0, load: LOAD, onOutcome: (o) => outcomes.push(o) });
  assert.equal(readFileSync(join(dir, 'CURRENT'), 'utf8').trim(), 'v1', "the cache's pointer names the served version");
  for (const [i, v] of ['v2', 'v3', 'v4'].entries()) {
    await build(storeDir, v, 10 + i, 100);
    const o = await r.check();
    assert.equal(o.kind, 'swapped', JSON.stringify(o));
    assert.equal(r.current().version, v);
    assert.ok(r.current().search([1, 0, 0, 0, 0, 0, 0, 0]).ids.every((id) => id.startsWith(`${v}-`)));
  }
  assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'v3', 'v4']);
  // The store unreachable: an error, not a refusal; the same version swaps in once it is back.
  await build(storeDir, 'v5', 20, 100);
  server.faults.statuses.set('/v5/manifest.json', [503, 503, 503, 503, 503]);
  const failing = new BundleRefresher(store(dir, { maxAttempts: 2 }), r.current(), { intervalMs: 0, load: LOAD });
  assert.equal((await failing.check()).kind, 'error');
  server.faults.statuses.delete('/v5/manifest.json');
  assert.equal((await failing.check()).kind, 'swapped');
  await failing.stop();
  await r.stop();
  assert.deepEqual(outcomes.map((o) => o.kind), ['swapped', 'swapped', 'swapped']);
  await movePointer(storeDir, 'v1');
});
