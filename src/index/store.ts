import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ErrorCodes, QualmError, describeError, isQualmError } from '../errors.js';
import { sha256File } from '../util/sha256.js';
import { movePointer } from './builder.js';
import { loadBundle, readPointer, type LoadOptions } from './loader.js';
import { MANIFEST_FILE, POINTER_FILE, bundleInvalid, checkManifest, type BundleManifest } from './manifest.js';
import { pruneBundles } from './retention.js';
import type { IndexSnapshot } from './snapshot.js';

/**
 * Where bundles live. A store names the live version (its pointer) and makes any version
 * available on local disk, from where `loadBundle(root, version)` loads and verifies it.
 */
export interface BundleStore {
  /** Where the store is, for logs and errors. */
  describe(): string;
  /** The version the store's pointer names; undefined while there is no pointer yet. */
  readPointer(signal?: AbortSignal): Promise<string | undefined>;
  /**
   * Makes `version` complete on local disk and returns the root directory that holds it
   * (`<root>/<version>/manifest.json`). Throws QUALM_BUNDLE_INVALID when the store's copy is
   * bad (the version should be refused), QUALM_BUNDLE_DOWNLOAD_FAILED when it could not be
   * fetched (worth trying again later), QUALM_ABORTED when `signal` fired.
   */
  materialize(version: string, signal?: AbortSignal): Promise<string>;
  /** Tells the store that `version` is now served: a caching store keeps it and prunes older copies. Never throws. */
  served(version: string): Promise<void>;
}

const VERSION_NAME = /^[A-Za-z0-9._-]+$/;

/** A version (or path segment) name that cannot leave its directory or hide as a temp dir. */
export function isVersionName(name: string): boolean {
  return VERSION_NAME.test(name) && !name.startsWith('.');
}

function checkVersion(version: string, where: string): string {
  if (!isVersionName(version)) {
    throw new QualmError(ErrorCodes.BUNDLE_INVALID, `${where} does not name a bundle version (got ${JSON.stringify(version.slice(0, 80))})`, {
      context: { path: where },
    });
  }
  return version;
}

function aborted(what: string, signal: AbortSignal | undefined): QualmError {
  return new QualmError(ErrorCodes.ABORTED, `${what} cancelled`, { cause: signal?.reason });
}

/**
 * Checks a manifest fetched from a store before anything it lists is downloaded: the format
 * version first (a clear message for an unknown one), then the schema, the version name, and
 * that every listed file is a relative path that stays inside the version directory.
 */
export function parseStoreManifest(version: string, text: string): BundleManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bundleInvalid(version, `manifest.json is not JSON: ${describeError(err)}`, err);
  }
  const manifest = checkManifest(version, doc);
  for (const name of Object.keys(manifest.files)) {
    if (name === MANIFEST_FILE || !name.split('/').every(isVersionName)) throw bundleInvalid(version, `manifest lists an unsafe file name ${JSON.stringify(name)}`);
  }
  return manifest;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A bundle directory on a local (or mounted) file system: the store is the directory itself. */
export class LocalBundleStore implements BundleStore {
  constructor(readonly dir: string) {}

  describe(): string {
    return this.dir;
  }

  async readPointer(): Promise<string | undefined> {
    const version = await readPointer(this.dir);
    return version === undefined ? undefined : checkVersion(version, join(this.dir, POINTER_FILE));
  }

  materialize(version: string): Promise<string> {
    checkVersion(version, 'version');
    return Promise.resolve(this.dir);
  }

  served(): Promise<void> {
    return Promise.resolve();
  }
}

export type StoreEvent =
  | { readonly kind: 'retry'; readonly url: string; readonly attempt: number; readonly delayMs: number; readonly reason: string }
  | { readonly kind: 'downloaded'; readonly version: string; readonly bytes: number; readonly ms: number; readonly resumed: number }
  | { readonly kind: 'pruned'; readonly versions: readonly string[] }
  | { readonly kind: 'cache_error'; readonly reason: string };

export interface HttpBundleStoreOptions {
  /** A request that receives no data for this long is aborted (and retried). Default 30 s. */
  idleTimeoutMs?: number;
  /** Consecutive attempts without progress before a request gives up. Default 5. */
  maxAttempts?: number;
  /** The first retry waits up to this long (full jitter), doubling per attempt. Default 250 ms. */
  baseDelayMs?: number;
  /** Cap of one backoff wait. Default 10 s. */
  maxDelayMs?: number;
  /** Downloaded versions the cache keeps (newest by created_at), always with the served one. Default 5. */
  retain?: number;
  /** Retries, completed downloads, pruning: for logs. */
  onEvent?: (event: StoreEvent) => void;
  random?: () => number;
}

const MAX_POINTER_BYTES = 4096;
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** A download lock not touched for this long belongs to a process that died. */
const LOCK_STALE_MS = 60_000;
const LOCK_TOUCH_MS = 10_000;
const LOCK_POLL_MS = 200;
const INSTANCE = `${process.pid}@${hostname()}#${randomBytes(4).toString('hex')}`;

function downloadFailed(url: URL, message: string, retriable: boolean, cause?: unknown): QualmError {
  return new QualmError(ErrorCodes.BUNDLE_DOWNLOAD_FAILED, `${url.href}: ${message}`, {
    retriable,
    context: { url: url.href },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The readable reason of a fetch failure ("fetch failed" alone says little; its cause says what). */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause instanceof Error ? `${describeError(err)} (${describeError(cause)})` : describeError(err);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(aborted('bundle download', signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted('bundle download', signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The body of a response as byte chunks (undici's web stream is async-iterable). */
function chunks(res: Response): AsyncIterable<Uint8Array> {
  return (res.body ?? []) as AsyncIterable<Uint8Array>;
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Reads a whole (small) response body, refusing more than `max` bytes. */
async function readLimited(res: Response, url: URL, max: number, alive: () => void): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of chunks(res)) {
    alive();
    n += chunk.byteLength;
    if (n > max) {
      await discard(res);
      throw downloadFailed(url, `response larger than ${max} bytes`, false);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

function statusError(url: URL, status: number): QualmError {
  // Server trouble and throttling pass; anything else (404, 403, ...) will not by retrying.
  const retriable = status >= 500 || status === 408 || status === 429;
  return downloadFailed(url, `HTTP ${status}`, retriable);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * A bundle store served over HTTP(S): `<base>/CURRENT` names the live version and
 * `<base>/<version>/<file>` serves every file of a version, as any static web server or
 * object store (S3, GCS, MinIO, nginx, ...) does. Versions are downloaded into a local cache
 * directory: each file into `<cache>/.partial-<version>/`, resumed with a Range request after
 * an interruption, retried with capped exponential backoff on network errors and 5xx,
 * checked against the manifest's size and sha256, and only then is the directory renamed to
 * `<cache>/<version>/`. A version already complete in the cache is not downloaded again.
 * The cache's own CURRENT names the served version, which retention never deletes.
 */
export class HttpBundleStore implements BundleStore {
  private readonly base: URL;
  private readonly idleTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly retain: number;
  private readonly random: () => number;

  constructor(
    baseUrl: string,
    readonly cacheDir: string,
    private readonly opts: HttpBundleStoreOptions = {},
  ) {
    const base = new URL(baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new RangeError(`bundle store URL must be http(s), got ${baseUrl}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.retain = opts.retain ?? 5;
    this.random = opts.random ?? Math.random;
  }

  describe(): string {
    return this.base.href;
  }

  private url(...segments: string[]): URL {
    return new URL(segments.map(encodeURIComponent).join('/'), this.base);
  }

  /**
   * One request whose response must keep arriving: no data for idleTimeoutMs aborts it.
   * `use` consumes the response and calls `alive` on every chunk.
   */
  private async once<T>(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined, use: (res: Response, alive: () => void) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const alive = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => ac.abort(new Error(`no data for ${this.idleTimeoutMs} ms`)), this.idleTimeoutMs);
    };
    const onAbort = (): void => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    alive();
    try {
      const res = await fetch(url, { headers, signal: ac.signal, redirect: 'follow' });
      alive();
      return await use(res, alive);
    } catch (err) {
      if (signal?.aborted === true) throw aborted('bundle download', signal);
      if (isQualmError(err)) throw err;
      // Local file system failures (ENOSPC, EACCES) do not pass by asking the server again.
      if (typeof (err as NodeJS.ErrnoException).syscall === 'string') throw err;
      const reason = ac.signal.aborted ? describeError(ac.signal.reason) : networkReason(err);
      throw downloadFailed(url, reason, true, err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Runs `attempt` until it succeeds, a non-retriable error, or maxAttempts consecutive
   * failures that made no progress (an attempt that moved bytes resets the count, so a
   * download that keeps getting cut off still finishes). Waits are full-jitter exponential.
   */
  private async withRetries<T>(url: URL, signal: AbortSignal | undefined, attempt: (progress: () => void) => Promise<T>): Promise<T> {
    let failures = 0;
    for (;;) {
      if (signal?.aborted === true) throw aborted('bundle download', signal);
      let progressed = false;
      try {
        return await attempt(() => {
          progressed = true;
        });
      } catch (err) {
        if (!isQualmError(err) || !err.retriable) throw err;
        failures = progressed ? 1 : failures + 1;
        if (failures >= this.maxAttempts) {
          throw downloadFailed(url, `gave up after ${failures} attempts: ${describeError(err)}`, true, err);
        }
        const delayMs = Math.round(this.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (failures - 1)));
        this.opts.onEvent?.({ kind: 'retry', url: url.href, attempt: failures, delayMs, reason: describeError(err) });
        await sleep(delayMs, signal);
      }
    }
  }

  /** GET a small document; undefined on 404. */
  private getSmall(url: URL, max: number, signal: AbortSignal | undefined, headers: Record<string, string> = {}): Promise<Buffer | undefined> {
    return this.withRetries(url, signal, () =>
      this.once(url, headers, signal, async (res, alive) => {
        if (res.status === 404) {
          await discard(res);
          return undefined;
        }
        if (!res.ok) {
          await discard(res);
          throw statusError(url, res.status);
        }
        return readLimited(res, url, max, alive);
      }),
    );
  }

  async readPointer(signal?: AbortSignal): Promise<string | undefined> {
    const url = this.url(POINTER_FILE);
    // The pointer moves: ask caches between us and the store to revalidate.
    const body = await this.getSmall(url, MAX_POINTER_BYTES, signal, { 'cache-control': 'no-cache' });
    return body === undefined ? undefined : checkVersion(body.toString('utf8').trim(), url.href);
  }

  async materialize(version: string, signal?: AbortSignal): Promise<string> {
    checkVersion(version, 'version');
    const final = join(this.cacheDir, version);
    if (await exists(join(final, MANIFEST_FILE))) return this.cacheDir;
    await mkdir(this.cacheDir, { recursive: true });
    const release = await this.lock(version, signal);
    try {
      // Another process sharing the cache may have finished it while we waited.
      if (!(await exists(join(final, MANIFEST_FILE)))) await this.download(version, signal);
      return this.cacheDir;
    } finally {
      await release();
    }
  }

  private async download(version: string, signal: AbortSignal | undefined): Promise<void> {
    const t0 = Date.now();
    const manifestUrl = this.url(version, MANIFEST_FILE);
    const manifestBytes = await this.getSmall(manifestUrl, MAX_MANIFEST_BYTES, signal);
    if (manifestBytes === undefined) throw downloadFailed(manifestUrl, 'HTTP 404: the store has no such version', false);
    const manifest = parseStoreManifest(version, manifestBytes.toString('utf8'));

    const partial = join(this.cacheDir, `.partial-${version}`);
    await mkdir(partial, { recursive: true });
    let bytes = 0;
    let resumed = 0;
    try {
      for (const [name, expect] of Object.entries(manifest.files)) {
        const r = await this.downloadFile(version, name, join(partial, name), expect, signal);
        bytes += r.fetched;
        if (r.resumed) resumed++;
      }
      // The manifest goes in last: a directory without it is never taken for a complete version.
      await writeFile(join(partial, MANIFEST_FILE), manifestBytes);
      const final = join(this.cacheDir, version);
      await rm(final, { recursive: true, force: true });
      await rename(partial, final);
    } catch (err) {
      // A bad version has nothing worth resuming; a cut-off download keeps its bytes for the next try.
      if (isQualmError(err) && err.code === ErrorCodes.BUNDLE_INVALID) await rm(partial, { recursive: true, force: true });
      throw err;
    }
    this.opts.onEvent?.({ kind: 'downloaded', version, bytes, ms: Date.now() - t0, resumed });
  }

  /** Downloads one file (resuming what is already there) and verifies its size and sha256. */
  private async downloadFile(
    version: string,
    name: string,
    path: string,
    expect: { sha256: string; bytes: number },
    signal: AbortSignal | undefined,
  ): Promise<{ fetched: number; resumed: boolean }> {
    const url = this.url(version, ...name.split('/'));
    await mkdir(dirname(path), { recursive: true });
    let fetched = 0;
    let resumed = false;
    for (let pass = 0; ; pass++) {
      await this.withRetries(url, signal, (progress) =>
        this.fetchInto(url, version, name, path, expect.bytes, signal, (n, fromOffset) => {
          fetched += n;
          if (fromOffset > 0) resumed = true;
          progress();
        }),
      );
      const sum = await sha256File(path);
      if (sum === expect.sha256) return { fetched, resumed };
      await rm(path, { force: true });
      // Bytes kept from an earlier attempt may be what is wrong: one clean download decides.
      if (resumed && pass === 0) continue;
      throw bundleInvalid(version, `${name} checksum mismatch (sha256 ${sum}, manifest says ${expect.sha256}) from ${url.href}`);
    }
  }

  /** One attempt at bringing `path` to `size` bytes: a Range request when part of it is there. */
  private async fetchInto(
    url: URL,
    version: string,
    name: string,
    path: string,
    size: number,
    signal: AbortSignal | undefined,
    onBytes: (n: number, fromOffset: number) => void,
  ): Promise<void> {
    let have = await fileSize(path);
    if (have > size) {
      await rm(path, { force: true });
      have = 0;
    }
    if (have === size && (size > 0 || (await exists(path)))) return;
    await this.once(url, have > 0 ? { range: `bytes=${have}-` } : {}, signal, async (res, alive) => {
      let offset: number;
      if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        offset = m === null ? -1 : Number(m[1]);
        if (offset !== have) {
          await discard(res);
          await rm(path, { force: true });
          throw downloadFailed(url, `asked for bytes from ${have}, got Content-Range ${res.headers.get('content-range') ?? '(none)'}; restarting the file`, true);
        }
      } else if (res.status === 200) {
        offset = 0; // the whole file: the server ignores Range, or nothing was there yet
      } else if (res.status === 416) {
        await discard(res);
        await rm(path, { force: true });
        throw downloadFailed(url, `range from ${have} not satisfiable; restarting the file`, true);
      } else {
        await discard(res);
        throw statusError(url, res.status);
      }
      const fh = await open(path, offset === 0 ? 'w' : 'r+');
      let pos = offset;
      try {
        for await (const chunk of chunks(res)) {
          alive();
          if (pos + chunk.byteLength > size) {
            await discard(res);
            throw bundleInvalid(version, `${name} from ${url.href} is larger than the manifest's ${size} bytes`);
          }
          await fh.write(chunk, 0, chunk.byteLength, pos);
          pos += chunk.byteLength;
          onBytes(chunk.byteLength, offset);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (pos !== size) throw downloadFailed(url, `response ended at byte ${pos} of ${size}`, true);
    });
  }

  /**
   * Takes `<cache>/.partial-<version>.lock`, so that processes sharing one cache download a
   * version once. A lock whose owner died (same host, its instance gone; or untouched for a
   * minute) is taken over.
   */
  private async lock(version: string, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
    const path = join(this.cacheDir, `.partial-${version}.lock`);
    for (;;) {
      try {
        await writeFile(path, INSTANCE, { flag: 'wx' });
        const touch = setInterval(() => {
          const now = new Date();
          utimes(path, now, now).catch(() => undefined);
        }, LOCK_TOUCH_MS);
        touch.unref();
        return async () => {
          clearInterval(touch);
          await rm(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (await this.lockIsStale(path)) {
        await rm(path, { force: true });
        continue;
      }
      await sleep(LOCK_POLL_MS, signal);
    }
  }

  private async lockIsStale(path: string): Promise<boolean> {
    let owner: string;
    let mtime: number;
    try {
      owner = await readFile(path, 'utf8');
      mtime = (await stat(path)).mtimeMs;
    } catch {
      return false; // gone already: the next try takes it
    }
    if (Date.now() - mtime > LOCK_STALE_MS) return true;
    const m = /^(\d+)@(.*)#([0-9a-f]+)$/.exec(owner);
    if (m === null) return false;
    const [, pid, host] = m;
    if (host !== hostname()) return false;
    if (owner === INSTANCE) return false; // this process: another call is downloading
    if (Number(pid) === process.pid) return true; // an earlier life of this pid (a restarted container)
    try {
      process.kill(Number(pid), 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  /**
   * Records `version` as served (the cache's CURRENT), deletes cached versions beyond the
   * newest `retain` (never the served one) and abandoned partial downloads of other versions.
   */
  async served(version: string): Promise<void> {
    try {
      if (!(await exists(join(this.cacheDir, version, MANIFEST_FILE)))) return;
      await movePointer(this.cacheDir, version);
      const removed = await pruneBundles(this.cacheDir, this.retain);
      for (const entry of await readdir(this.cacheDir)) {
        const m = /^\.partial-(.+)$/.exec(entry);
        if (m === null || entry.endsWith('.lock') || (await exists(join(this.cacheDir, `${entry}.lock`)))) continue;
        if (m[1] !== version) {
          await rm(join(this.cacheDir, entry), { recursive: true, force: true });
          removed.push(entry);
        }
      }
      if (removed.length > 0) this.opts.onEvent?.({ kind: 'pruned', versions: removed });
    } catch (err) {
      this.opts.onEvent?.({ kind: 'cache_error', reason: describeError(err) });
    }
  }
}

/**
 * Loads the version a store's pointer names: materialize, then loadBundle's full
 * verification. QUALM_BUNDLE_MISSING when the store has no pointer yet.
 */
export async function loadCurrentFromStore(store: BundleStore, opts: LoadOptions, signal?: AbortSignal): Promise<IndexSnapshot> {
  const version = await store.readPointer(signal);
  if (version === undefined) {
    throw new QualmError(ErrorCodes.BUNDLE_MISSING, `no bundle in ${store.describe()} (no ${POINTER_FILE} pointer): run qualm build-index first`, {
      context: { path: store.describe() },
    });
  }
  const snapshot = await loadBundle(await store.materialize(version, signal), version, opts);
  await store.served(version);
  return snapshot;
}
