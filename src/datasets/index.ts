export { parseIdx, readIdxFile, encodeIdx, type IdxArray } from './idx.js';
export {
  loadFashionMnist,
  fashionMnistDirs,
  FASHION_MNIST_LABELS,
  DEBIAN_FASHION_MNIST_DIR,
  SLICE_FASHION_MNIST_DIR,
  type Split,
} from './fashion-mnist.js';
export { loadMnist } from './mnist.js';
export { row, type ImageSet } from './types.js';
export { balancedSubsample, subsetTexts, type TextSet } from './text-set.js';
export { loadImdb, cleanReview, IMDB_LABELS, type ImdbSplit } from './imdb.js';
export { loadSpamAssassin, mailBody, SPAM_ASSASSIN_GROUPS, SPAM_ASSASSIN_LABELS, type SpamAssassinGroup } from './spam-assassin.js';
