/**
 * The inference thread. onnxruntime-node's run() holds the calling thread until the model
 * is done, so it runs here and the main thread keeps serving Kafka heartbeats and metrics.
 * Text models also tokenize here, so the main thread only posts strings.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { Tokenizer } from 'tokenizers';
import type { EmbedRequest, EmbedTextRequest, InitMessage, ThreadReply, ThreadRequest } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('onnx-thread must run as a worker thread');
const init = workerData as InitMessage;

function reply(msg: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

let session: ort.InferenceSession;
let tokenizer: Tokenizer | undefined;
try {
  session = await ort.InferenceSession.create(init.modelPath, {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  if (init.kind === 'text') {
    const tok = Tokenizer.fromFile(init.tokenizerPath);
    // tokenizer.json files often pad every text to a fixed length; runs pad to their longest text instead.
    tok.disablePadding();
    tok.setTruncation(init.maxTokens);
    tokenizer = tok;
  }
  reply({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames });
} catch (err) {
  reply({ type: 'init-failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

async function embedFeatures(req: EmbedRequest): Promise<void> {
  if (init.kind !== 'features') throw new Error('this model takes text, not features');
  const input = new ort.Tensor('float32', req.data, [req.n, init.inputDim]);
  const out = await session.run({ [init.inputName]: input });
  const tensor = out[init.outputName];
  if (tensor === undefined) throw new Error(`model has no output ${init.outputName}`);
  const data = Float32Array.from(tensor.data as Float32Array);
  reply({ type: 'result', id: req.id, data, dims: tensor.dims }, [data.buffer]);
}

/**
 * Tokenizes the texts, pads them to the longest one, runs the model once and mean-pools the
 * token vectors over the attention mask (sentence-transformers' pooling: padding tokens carry
 * no weight, so a row's vector does not depend on what else is in the run).
 */
async function embedTexts(req: EmbedTextRequest): Promise<void> {
  if (init.kind !== 'text' || tokenizer === undefined) throw new Error('this model takes features, not text');
  const n = req.texts.length;
  const encodings = await tokenizer.encodeBatch([...req.texts]);
  const seq = Math.max(1, ...encodings.map((e) => e.getLength()));
  const ids = new BigInt64Array(n * seq);
  const mask = new BigInt64Array(n * seq);
  const types = new BigInt64Array(n * seq);
  encodings.forEach((e, i) => {
    const off = i * seq;
    const eIds = e.getIds();
    const eMask = e.getAttentionMask();
    const eTypes = e.getTypeIds();
    for (let t = 0; t < eIds.length; t++) {
      ids[off + t] = BigInt(eIds[t] as number);
      mask[off + t] = BigInt(eMask[t] as number);
      types[off + t] = BigInt(eTypes[t] as number);
    }
  });
  const feeds: Record<string, ort.Tensor> = {
    [init.inputIds]: new ort.Tensor('int64', ids, [n, seq]),
    [init.attentionMask]: new ort.Tensor('int64', mask, [n, seq]),
  };
  if (init.tokenTypeIds !== null) feeds[init.tokenTypeIds] = new ort.Tensor('int64', types, [n, seq]);
  const out = await session.run(feeds);
  const tensor = out[init.outputName];
  if (tensor === undefined) throw new Error(`model has no output ${init.outputName}`);
  const [b, t, dim] = tensor.dims;
  if (tensor.dims.length !== 3 || b !== n || t !== seq || dim === undefined) {
    throw new Error(`output ${init.outputName} has shape [${tensor.dims.join(', ')}], expected [${n}, ${seq}, dim]`);
  }
  const hidden = tensor.data as Float32Array;
  const pooled = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let weight = 0;
    const row = pooled.subarray(i * dim, (i + 1) * dim);
    for (let s = 0; s < seq; s++) {
      if (mask[i * seq + s] === 0n) continue;
      weight++;
      const off = (i * seq + s) * dim;
      for (let d = 0; d < dim; d++) row[d] = (row[d] as number) + (hidden[off + d] as number);
    }
    // sentence-transformers clamps the mask sum at 1e-9; a row always has [CLS] and [SEP] here.
    const inv = 1 / Math.max(weight, 1e-9);
    for (let d = 0; d < dim; d++) row[d] = (row[d] as number) * inv;
  }
  reply({ type: 'result', id: req.id, data: pooled, dims: [n, dim] }, [pooled.buffer]);
}

port.on('message', (req: ThreadRequest) => {
  void (async () => {
    try {
      if (req.type === 'text') await embedTexts(req);
      else await embedFeatures(req);
    } catch (err) {
      reply({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
