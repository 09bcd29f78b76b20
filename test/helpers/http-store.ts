// A static HTTP server over a bundle directory, as an object store or nginx would serve it,
// with faults to inject: a connection cut after N bytes, error statuses, Range ignored.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join, resolve, sep } from 'node:path';
import { freeLoopbackPort } from '../../src/util/ports.js';

export interface ServedRequest {
  readonly path: string;
  readonly range: string | undefined;
  readonly status: number;
}

export interface StoreFaults {
  /** Path → bytes after which the next response for it is cut off (the socket destroyed); used once. */
  cutAfter: Map<string, number>;
  /** Path → statuses to answer the next requests with, one per request, before serving normally. */
  statuses: Map<string, number[]>;
  /** Answer every Range request with the whole file (200), as some servers do. */
  ignoreRange: boolean;
}

export class StaticStore {
  readonly requests: ServedRequest[] = [];
  readonly faults: StoreFaults = { cutAfter: new Map(), statuses: new Map(), ignoreRange: false };

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Serves `root` on a free loopback port; `url` ends with a slash. */
  static async start(root: string): Promise<StaticStore> {
    // The handler reaches the store (its faults and request log) once it exists.
    const port = await freeLoopbackPort();
    const base = resolve(root);
    const holder: { store?: StaticStore } = {};
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = resolve(join(base, path));
      const range = req.headers.range;
      const answer = (status: number): void => {
        holder.store?.requests.push({ path, range, status });
      };
      const queued = holder.store?.faults.statuses.get(path);
      const forced = queued?.shift();
      if (forced !== undefined) {
        answer(forced);
        res.writeHead(forced).end();
        return;
      }
      if (req.method !== 'GET' || !file.startsWith(base + sep)) {
        answer(403);
        res.writeHead(403).end();
        return;
      }
      stat(file).then(
        (s) => {
          if (!s.isFile()) {
            answer(404);
            res.writeHead(404).end();
            return;
          }
          let start = 0;
          const m = /^bytes=(\d+)-$/.exec(range ?? '');
          if (m !== null && holder.store?.faults.ignoreRange !== true) {
            start = Number(m[1]);
            if (start >= s.size) {
              answer(416);
              res.writeHead(416, { 'content-range': `bytes */${s.size}` }).end();
              return;
            }
            answer(206);
            res.writeHead(206, { 'content-length': s.size - start, 'content-range': `bytes ${start}-${s.size - 1}/${s.size}`, 'accept-ranges': 'bytes' });
          } else {
            answer(200);
            res.writeHead(200, { 'content-length': s.size, 'accept-ranges': 'bytes' });
          }
          const cut = holder.store?.faults.cutAfter.get(path);
          if (cut !== undefined) {
            holder.store?.faults.cutAfter.delete(path);
            // Send `cut` bytes, then drop the connection mid-body.
            const body = createReadStream(file, { start, end: start + cut - 1 });
            body.on('data', (chunk) => res.write(chunk));
            body.on('end', () => setTimeout(() => res.socket?.destroy(), 20));
            return;
          }
          createReadStream(file, { start }).pipe(res);
        },
        () => {
          answer(404);
          res.writeHead(404).end();
        },
      );
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => ok());
    });
    const store = new StaticStore(server, `http://127.0.0.1:${port}/`);
    holder.store = store;
    return store;
  }

  /** Requests for one path, in order. */
  requestsFor(path: string): ServedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }
}
