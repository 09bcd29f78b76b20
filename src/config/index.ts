export { OPTIONS, CONFIG_FILE_ENV, type OptionSpec, type OptionName } from './options.js';
export { loadConfig, modelManifestPath, type Config } from './load.js';
