/**
 * A build thread: hnswlib's addPoint and searchKnn hold the calling thread, so a parallel
 * build runs them here, one thread per shard (or per slice of the leave-one-out queries),
 * over vectors shared with the builder. Cancellation is the builder terminating the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BuildReply, BuildRequest, BuildThreadData } from './build-protocol.js';
import { ShardWork } from './shard-work.js';

const port = parentPort;
if (port === null) throw new Error('build-thread must run as a worker thread');
const data = workerData as BuildThreadData;
const work = new ShardWork(new Float32Array(data.vectors, data.byteOffset, data.length), data.dim, data.metric);

function reply(msg: BuildReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

async function handle(req: BuildRequest): Promise<void> {
  switch (req.type) {
    case 'build': {
      const at = await work.open(req.params, req.base, req.hi - req.lo);
      for (const done of work.insert(at, req.lo, req.hi)) reply({ type: 'progress', done });
      await work.write(at, req.out);
      reply({ type: 'done' });
      return;
    }
    case 'load':
      await work.load(req.file);
      reply({ type: 'done' });
      return;
    case 'nearest': {
      const rows = new Int32Array((req.hi - req.lo) * req.k1);
      const dist = new Float32Array((req.hi - req.lo) * req.k1);
      for (const done of work.nearest(req.lo, req.hi, req.k1, req.ef, rows, dist)) reply({ type: 'progress', done });
      reply({ type: 'nearest', rows, dist }, [rows.buffer, dist.buffer]);
      return;
    }
  }
}

// Requests arrive one at a time (the builder awaits each reply), so they never interleave.
port.on('message', (req: BuildRequest) => {
  handle(req).catch((err: unknown) => reply({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
});
