/**
 * Writes the files that docs/bring-your-own.md starts from, as a team would have them: its own
 * labelled reference data, test data and its downstream model's predictions, in plain formats
 * (JSONL, PNG files, CSV). They are made from qualm's built-in sets only so that the walk-through
 * runs anywhere; nothing in qualm reads them as anything but the user's files.
 *
 *   npm run example-data -- DIR [--images-refs N] [--images-test N] [--texts-refs N] [--texts-test N]
 *
 * DIR/images: refs.jsonl (image_b64 + label), test.jsonl, test-png/<id>.png (raw image files),
 *   predictions.csv (a softmax regression on raw pixels, trained on the references: the "downstream
 *   model", with one p_<label> column per class).
 * DIR/texts: refs.jsonl (text + label neg/pos), test.jsonl, predictions.jsonl ({id, probs} from a
 *   naive Bayes word model trained on the references, probs in the order [neg, pos]).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { balancedSubsample, loadFashionMnist, loadImdb, subsetTexts, type ImageSet } from '../src/datasets/index.js';
import { trainLinearProbe } from '../src/eval/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'images-refs': { type: 'string', default: '3000' },
    'images-test': { type: 'string', default: '500' },
    'texts-refs': { type: 'string', default: '1000' },
    'texts-test': { type: 'string', default: '200' },
    'text-chars': { type: 'string', default: '400' },
  },
});
const out = positionals[0];
if (out === undefined) {
  console.error('usage: npm run example-data -- DIR [--images-refs N] [--images-test N] [--texts-refs N] [--texts-test N] [--text-chars C]');
  process.exit(2);
}
const count = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};

/** A 28x28 grayscale PNG of row i (pixels in [0, 1] → 0..255, exact for the IDX bytes they came from). */
async function png(set: ImageSet, i: number): Promise<Buffer> {
  const raw = Buffer.alloc(set.dim);
  for (let j = 0; j < set.dim; j++) raw[j] = Math.round((set.pixels[i * set.dim + j] as number) * 255);
  return sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
}

async function images(dir: string, nRef: number, nTest: number): Promise<void> {
  const train = loadFashionMnist('train');
  const test = loadFashionMnist('t10k');
  nRef = Math.min(nRef, train.n);
  nTest = Math.min(nTest, test.n);
  mkdirSync(join(dir, 'test-png'), { recursive: true });
  const refLines: string[] = [];
  for (let i = 0; i < nRef; i++) {
    refLines.push(JSON.stringify({ id: `train-${i}`, input: { image_b64: (await png(train, i)).toString('base64') }, label: train.labelNames[train.labels[i] as number] }));
  }
  writeFileSync(join(dir, 'refs.jsonl'), `${refLines.join('\n')}\n`);
  const testLines: string[] = [];
  for (let i = 0; i < nTest; i++) {
    const bytes = await png(test, i);
    writeFileSync(join(dir, 'test-png', `test-${i}.png`), bytes);
    testLines.push(JSON.stringify({ id: `test-${i}`, input: { image_b64: bytes.toString('base64') }, label: test.labelNames[test.labels[i] as number] }));
  }
  writeFileSync(join(dir, 'test.jsonl'), `${testLines.join('\n')}\n`);
  // The downstream model: softmax regression on the raw pixels of the references.
  const model = trainLinearProbe(train.pixels.subarray(0, nRef * train.dim), train.labels.subarray(0, nRef), nRef, train.dim, train.labelNames.length, {
    epochs: 10,
    batchSize: 128,
    learningRate: 0.01,
    weightDecay: 1e-4,
    seed: 1,
  });
  const probs = model.predictProba(test.pixels.subarray(0, nTest * test.dim), nTest);
  const c = train.labelNames.length;
  const rows = [['id', ...train.labelNames.map((l) => `p_${l}`)].join(',')];
  for (let i = 0; i < nTest; i++) rows.push([`test-${i}`, ...Array.from(probs.subarray(i * c, (i + 1) * c), (p) => p.toFixed(6))].join(','));
  writeFileSync(join(dir, 'predictions.csv'), `${rows.join('\n')}\n`);
}

const words = (t: string): string[] => t.toLowerCase().match(/[a-z']+/g) ?? [];

function texts(dir: string, nRef: number, nTest: number, chars: number): void {
  const train = loadImdb('train');
  const testAll = loadImdb('test');
  const ref = subsetTexts(train, balancedSubsample(train.labels, nRef, 1));
  const test = subsetTexts(testAll, balancedSubsample(testAll.labels, nTest, 2));
  const cut = (t: string): string => (t.length <= chars ? t : t.slice(0, t.lastIndexOf(' ', chars) > 0 ? t.lastIndexOf(' ', chars) : chars));
  mkdirSync(dir, { recursive: true });
  const lines = (set: typeof ref, prefix: string): string =>
    set.texts.map((t, i) => JSON.stringify({ id: `${prefix}-${i}`, input: { text: cut(t) }, label: set.labelNames[set.labels[i] as number] })).join('\n') + '\n';
  writeFileSync(join(dir, 'refs.jsonl'), lines(ref, 'ref'));
  writeFileSync(join(dir, 'test.jsonl'), lines(test, 'test'));
  // The downstream model: multinomial naive Bayes on the words of the (cut) reference texts.
  const counts = [new Map<string, number>(), new Map<string, number>()];
  const totals = [0, 0];
  const prior = [0, 0];
  ref.texts.forEach((t, i) => {
    const y = ref.labels[i] as number;
    prior[y] = (prior[y] as number) + 1;
    for (const w of words(cut(t))) {
      const m = counts[y] as Map<string, number>;
      m.set(w, (m.get(w) ?? 0) + 1);
      totals[y] = (totals[y] as number) + 1;
    }
  });
  const vocab = new Set([...(counts[0] as Map<string, number>).keys(), ...(counts[1] as Map<string, number>).keys()]).size;
  const preds = test.texts.map((t, i) => {
    const ll = [0, 1].map((y) => {
      let s = Math.log((prior[y] as number) / ref.n);
      for (const w of words(cut(t))) s += Math.log((((counts[y] as Map<string, number>).get(w) ?? 0) + 1) / ((totals[y] as number) + vocab));
      return s;
    });
    const m = Math.max(...ll);
    const e = ll.map((v) => Math.exp(v - m));
    const z = (e[0] as number) + (e[1] as number);
    return JSON.stringify({ id: `test-${i}`, probs: e.map((v) => Number((v / z).toFixed(6))) });
  });
  writeFileSync(join(dir, 'predictions.jsonl'), `${preds.join('\n')}\n`);
}

await images(join(out, 'images'), count('images-refs'), count('images-test'));
texts(join(out, 'texts'), count('texts-refs'), count('texts-test'), count('text-chars'));
console.log(JSON.stringify({ dir: out, images: join(out, 'images'), texts: join(out, 'texts') }));
