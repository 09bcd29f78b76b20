export { BatchScorer, type BatchOutput, type Embedder, type InMessage } from './batch-scorer.js';
export { StreamWorker, createPolicy, type WorkerDeps } from './worker.js';
