import type { Config } from '../../config/index.js';
import { loadFashionMnist } from '../../datasets/index.js';
import { OnnxEncoder } from '../../encoder/index.js';
import { DEFAULT_PROBE, accuracy, trainLinearProbe } from '../../eval/index.js';
import { intFlag, parseFlags } from '../args.js';
import { Progress } from '../progress.js';

export const HELP = `qualm probe: linear-probe accuracy of the encoder on Fashion-MNIST

Usage: qualm probe [--epochs E] [--seed S]

Embeds the Fashion-MNIST training and test splits with the model at QUALM_MODEL_PATH, trains
a softmax-regression probe on the frozen training embeddings (standardised features,
mini-batch Adam) and prints its accuracy on the test split as JSON. This is the number the
model card reports.

Options:
  --epochs E  probe training epochs (default: ${DEFAULT_PROBE.epochs})
  --seed S    probe seed (default: ${DEFAULT_PROBE.seed})
  -h, --help  this text`;

export async function run(argv: string[], config: Config): Promise<number> {
  const { values } = parseFlags(argv, { epochs: { type: 'string' }, seed: { type: 'string' } });
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const t0 = Date.now();
  const train = loadFashionMnist('train');
  const testSet = loadFashionMnist('t10k');
  const progress = new Progress();
  const encoder = await OnnxEncoder.open(config.modelPath, { intraOpThreads: config.intraOpThreads });
  let ztr: Float32Array;
  let zte: Float32Array;
  try {
    ztr = await encoder.embedAll(train.pixels, train.n, 512, (d) => progress.update('embed train', d, train.n));
    progress.next();
    zte = await encoder.embedAll(testSet.pixels, testSet.n, 512, (d) => progress.update('embed test', d, testSet.n));
  } finally {
    await encoder.close();
  }
  const opts = { ...DEFAULT_PROBE, epochs: intFlag('epochs', values.epochs, DEFAULT_PROBE.epochs, 1), seed: intFlag('seed', values.seed, DEFAULT_PROBE.seed) };
  const probe = trainLinearProbe(ztr, train.labels, train.n, encoder.dim, train.labelNames.length, opts);
  const trainAcc = accuracy(probe.predict(ztr, train.n), train.labels);
  const testAcc = accuracy(probe.predict(zte, testSet.n), testSet.labels);
  console.log(
    JSON.stringify({
      model: `${encoder.manifest.name}@${encoder.manifest.version}`,
      model_sha256: encoder.sha256,
      data: train.origin,
      n_train: train.n,
      n_test: testSet.n,
      probe: opts,
      linear_probe_train_accuracy: Math.round(trainAcc * 10000) / 10000,
      linear_probe_test_accuracy: Math.round(testAcc * 10000) / 10000,
      seconds: (Date.now() - t0) / 1000,
    }),
  );
  return 0;
}
