// Verifies the exported ONNX model with onnxruntime-node (the runtime the TS side uses):
// runs the batch of 3 test images written by train.py (--ref-out) and compares with torch's output.
// usage: node tools/train-simclr/verify_onnx.cjs [models/fmnist-simclr.onnx] [/tmp/simclr/ref.json]
const fs = require('fs');
const path = require('path');
const ort = require(path.resolve(__dirname, '../../node_modules/onnxruntime-node'));

async function main() {
  const modelPath = process.argv[2] || path.resolve(__dirname, '../../models/fmnist-simclr.onnx');
  const refPath = process.argv[3] || '/tmp/simclr/ref.json';
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const sess = await ort.InferenceSession.create(modelPath);
  console.log('inputs', sess.inputNames, 'outputs', sess.outputNames);
  const n = ref.pixels.length;
  const data = Float32Array.from(ref.pixels.flat());
  const out = await sess.run({ pixels: new ort.Tensor('float32', data, [n, 784]) });
  const emb = out.embedding;
  console.log('output dims', emb.dims, 'type', emb.type);
  const dim = emb.dims[1];
  let maxDiff = 0;
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let j = 0; j < dim; j++) {
      const v = emb.data[i * dim + j];
      sq += v * v;
      maxDiff = Math.max(maxDiff, Math.abs(v - ref.embedding[i][j]));
    }
    console.log(`row ${i} (label ${ref.labels[i]}) norm ${Math.sqrt(sq).toFixed(6)}`);
  }
  console.log('max abs diff vs torch', maxDiff.toExponential(2));
  const ok = n === 3 && emb.dims[0] === n && dim === ref.embedding[0].length && maxDiff < 1e-4;
  console.log(ok ? 'VERIFY OK' : 'VERIFY FAILED');
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
