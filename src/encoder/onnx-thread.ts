/**
 * The inference thread. onnxruntime-node's run() holds the calling thread until the model
 * is done, so it runs here and the main thread keeps serving Kafka heartbeats and metrics.
 * Text models also tokenize here, and features models are preprocessed here, so the main
 * thread only posts strings or rows.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { Tokenizer } from 'tokenizers';
import type { EmbedRequest, EmbedTextRequest, InitMessage, Pooling, TensorInfo, ThreadPreprocess, ThreadReply, ThreadRequest } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('onnx-thread must run as a worker thread');
const init = workerData as InitMessage;

function reply(msg: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

/** The declared metadata of a session's inputs or outputs, as plain data (absent in older onnxruntime builds). */
function describe(meta: readonly ort.InferenceSession.ValueMetadata[] | undefined): TensorInfo[] {
  return (meta ?? []).map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: null, shape: [] }));
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
  reply({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) });
} catch (err) {
  reply({ type: 'init-failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

/** (x * scale - mean) / std in place, mean and std one value or one per feature. */
function preprocess(data: Float32Array, width: number, p: ThreadPreprocess): void {
  const mean = p.mean.length === 1 ? new Float32Array(width).fill(p.mean[0] as number) : Float32Array.from(p.mean);
  const inv = p.std.length === 1 ? new Float32Array(width).fill(1 / (p.std[0] as number)) : Float32Array.from(p.std, (s) => 1 / s);
  for (let off = 0; off < data.length; off += width) {
    for (let j = 0; j < width; j++) data[off + j] = ((data[off + j] as number) * p.scale - (mean[j] as number)) * (inv[j] as number);
  }
}

/**
 * One [n, dim] matrix from an output: as it is (none), or pooled over its tokens, the plain
 * mean or token 0 (cls), with a mask (text) counting only the tokens it marks.
 */
function pool(tensor: ort.Tensor, n: number, pooling: Pooling, mask: BigInt64Array | null): { data: Float32Array; dim: number } {
  const dims = tensor.dims;
  const values = tensor.data as Float32Array;
  if (pooling === 'none') {
    const [b, dim] = dims;
    if (dims.length !== 2 || b !== n || dim === undefined) throw new Error(`output has shape [${dims.join(', ')}], expected [${n}, dim] (pooling none)`);
    return { data: Float32Array.from(values), dim };
  }
  const [b, seq, dim] = dims;
  if (dims.length !== 3 || b !== n || seq === undefined || dim === undefined) {
    throw new Error(`output has shape [${dims.join(', ')}], expected [${n}, tokens, dim] (pooling ${pooling})`);
  }
  const pooled = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const row = pooled.subarray(i * dim, (i + 1) * dim);
    if (pooling === 'cls') {
      row.set(values.subarray(i * seq * dim, i * seq * dim + dim));
      continue;
    }
    let weight = 0;
    for (let s = 0; s < seq; s++) {
      if (mask !== null && mask[i * seq + s] === 0n) continue;
      weight++;
      const off = (i * seq + s) * dim;
      for (let d = 0; d < dim; d++) row[d] = (row[d] as number) + (values[off + d] as number);
    }
    // sentence-transformers clamps the mask sum at 1e-9; a text row always has [CLS] and [SEP].
    const inv = 1 / Math.max(weight, 1e-9);
    for (let d = 0; d < dim; d++) row[d] = (row[d] as number) * inv;
  }
  return { data: pooled, dim };
}

/** A tensor of `rows` rows of the input's dtype (uint8: rounded and clamped to 0..255). */
function inputTensor(values: Float32Array, rows: number): ort.Tensor {
  if (init.kind !== 'tensor') throw new Error('not a tensor model');
  const dims = [rows, ...init.dims];
  if (init.dtype === 'float32') return new ort.Tensor('float32', values, dims);
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) bytes[i] = Math.min(255, Math.max(0, Math.round(values[i] as number)));
  return new ort.Tensor('uint8', bytes, dims);
}

async function embedRows(req: EmbedRequest): Promise<void> {
  if (init.kind !== 'tensor') throw new Error('this model takes text, not features');
  const width = init.dims.reduce((a, b) => a * b, 1);
  const data = req.data;
  if (init.preprocess !== null) preprocess(data, width, init.preprocess);
  const run = init.fixedBatch ?? req.n;
  let out: Float32Array | undefined;
  let dim = 0;
  for (let start = 0; start < req.n; start += run) {
    const m = Math.min(run, req.n - start);
    let rows = data.subarray(start * width, (start + m) * width);
    if (m < run) {
      // A fixed batch size: pad the last run with zero rows, and drop their outputs.
      const padded = new Float32Array(run * width);
      padded.set(rows);
      rows = padded;
    }
    const res = await session.run({ [init.inputName]: inputTensor(rows, run) });
    const tensor = res[init.outputName];
    if (tensor === undefined) throw new Error(`model has no output ${init.outputName}`);
    const pooled = pool(tensor, run, init.pooling, null);
    if (out === undefined) {
      dim = pooled.dim;
      out = new Float32Array(req.n * dim);
    } else if (pooled.dim !== dim) {
      throw new Error(`output ${init.outputName} changed its dimension from ${dim} to ${pooled.dim} between runs`);
    }
    out.set(pooled.data.subarray(0, m * dim), start * dim);
  }
  const result = out ?? new Float32Array(0);
  reply({ type: 'result', id: req.id, data: result, dims: [req.n, dim] }, [result.buffer as ArrayBuffer]);
}

/**
 * Tokenizes the texts (after the manifest's prefix), pads them to the longest one, runs the
 * model once and pools the token vectors: the mean over the attention mask (sentence-
 * transformers' pooling: padding carries no weight, so a row does not depend on the rest of
 * the run), token 0 (cls), or the output as it is (none).
 */
async function embedTexts(req: EmbedTextRequest): Promise<void> {
  if (init.kind !== 'text' || tokenizer === undefined) throw new Error('this model takes features, not text');
  const n = req.texts.length;
  const encodings = await tokenizer.encodeBatch(init.prefix === '' ? [...req.texts] : req.texts.map((t) => init.prefix + t));
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
  if (init.pooling !== 'none' && tensor.dims[1] !== seq) throw new Error(`output ${init.outputName} has shape [${tensor.dims.join(', ')}], expected [${n}, ${seq}, dim]`);
  const { data, dim } = pool(tensor, n, init.pooling, mask);
  reply({ type: 'result', id: req.id, data, dims: [n, dim] }, [data.buffer as ArrayBuffer]);
}

port.on('message', (req: ThreadRequest) => {
  void (async () => {
    try {
      if (req.type === 'text') await embedTexts(req);
      else await embedRows(req);
    } catch (err) {
      reply({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
