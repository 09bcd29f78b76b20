export { BatchScorer, type BatchOutput, type Embedder, type InMessage } from './batch-scorer.js';
export { StreamWorker, createPolicy, PRODUCE_CHUNK_BYTES, type WorkerDeps } from './worker.js';
export { createKafka } from './kafka-client.js';
export { chunkByBytes, messageBytes } from './chunk.js';
export { readTopicToEnd } from './read-topic.js';
