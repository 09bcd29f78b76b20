/**
 * The worker's search thread: kNN queries on its own read-only copy of the served bundle's
 * HNSW shards, so that search (a third of a message's CPU) runs beside the main thread's
 * Kafka and scoring work and the inference thread's ONNX runs, on the machine's other core.
 * hnswlib objects cannot cross threads, so the thread opens the same shard files the main
 * thread's snapshot verified; nothing inserts into them, so they need no lock.
 */
import { parentPort } from 'node:worker_threads';
import hnswlib from 'hnswlib-node';
import { searchShards } from './shard-search.js';
import type { SearchLoad, SearchQuery, SearchReply, SearchRequest } from './search-protocol.js';

const port = parentPort;
if (port === null) throw new Error('search-thread must run as a worker thread');

const loaded = new Map<string, hnswlib.HierarchicalNSW[]>();

function reply(msg: SearchReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

async function load(req: SearchLoad): Promise<void> {
  const shards: hnswlib.HierarchicalNSW[] = [];
  for (const file of req.files) {
    const index = new hnswlib.HierarchicalNSW(req.metric, req.dim);
    await index.readIndex(file);
    if (index.getNumDimensions() !== req.dim) throw new Error(`${file} has dimension ${index.getNumDimensions()}, expected ${req.dim}`);
    index.setEf(req.ef);
    shards.push(index);
  }
  loaded.set(req.version, shards);
  reply({ type: 'loaded', version: req.version, count: shards.reduce((a, s) => a + s.getCurrentCount(), 0) });
}

function search(req: SearchQuery): void {
  const shards = loaded.get(req.version);
  if (shards === undefined) throw new Error(`bundle ${req.version} is not open in the search thread`);
  const dim = req.data.length / Math.max(1, req.n);
  const total = shards.reduce((a, s) => a + s.getCurrentCount(), 0);
  const m = Math.min(req.k, total);
  const rows = new Int32Array(req.n * m);
  const dist = new Float32Array(req.n * m);
  const q = new Array<number>(dim);
  for (let i = 0; i < req.n; i++) {
    for (let d = 0; d < dim; d++) q[d] = req.data[i * dim + d] as number;
    const found = searchShards(shards, q, m);
    rows.set(found.rows, i * m);
    dist.set(found.distances, i * m);
  }
  reply({ type: 'found', id: req.id, m, rows, dist }, [rows.buffer, dist.buffer]);
}

port.on('message', (req: SearchRequest) => {
  if (req.type === 'search') {
    try {
      search(req);
    } catch (err) {
      reply({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
    }
  } else if (req.type === 'drop') {
    loaded.delete(req.version);
  } else {
    load(req).catch((err: unknown) => reply({ type: 'load-failed', version: req.version, message: err instanceof Error ? err.message : String(err) }));
  }
});
