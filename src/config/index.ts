export { OPTIONS, CONFIG_FILE_ENV, SETTING_ENV_NAMES, type OptionSpec, type OptionName } from './options.js';
export { loadConfig, modelManifestPath, type Config } from './load.js';
export { readTlsMaterial, saslPasswordKey, tlsMaterial, type TlsMaterial } from './secrets.js';
