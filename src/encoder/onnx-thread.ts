/**
 * The inference thread. onnxruntime-node's run() holds the calling thread until the model
 * is done, so it runs here and the main thread keeps serving Kafka heartbeats and metrics.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { EmbedRequest, InitMessage, ThreadReply } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('onnx-thread must run as a worker thread');
const init = workerData as InitMessage;

function reply(msg: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

let session: ort.InferenceSession;
try {
  session = await ort.InferenceSession.create(init.modelPath, {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  reply({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames });
} catch (err) {
  reply({ type: 'init-failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

port.on('message', (req: EmbedRequest) => {
  void (async () => {
    try {
      const input = new ort.Tensor('float32', req.data, [req.n, init.inputDim]);
      const out = await session.run({ [init.inputName]: input });
      const tensor = out[init.outputName];
      if (tensor === undefined) throw new Error(`model has no output ${init.outputName}`);
      const data = Float32Array.from(tensor.data as Float32Array);
      reply({ type: 'result', id: req.id, data, dims: tensor.dims }, [data.buffer]);
    } catch (err) {
      reply({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
