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
