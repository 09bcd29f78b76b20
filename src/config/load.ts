import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { CONFIG_FILE_ENV, OPTIONS, SETTING_ENV_NAMES, type OptionName, type OptionSpec } from './options.js';
import { resolveCredentialFiles } from './secrets.js';

/**
 * QUALM_* variables that are not settings but are read elsewhere: the Fashion-MNIST directory
 * (src/datasets) and the local broker of scripts/kafka.sh and src/local-kafka.
 */
export const OTHER_ENV_NAMES: readonly string[] = ['QUALM_FASHION_MNIST_DIR', 'QUALM_KAFKA_VERSION', 'QUALM_KAFKA_PORT', 'QUALM_KAFKA_CONTROLLER_PORT'];

/** Levenshtein distance, for the nearest setting name of a misspelt one. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The known name closest to `name`, when it is close enough to be a typo of it. */
function nearestName(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const known of [...SETTING_ENV_NAMES, ...OTHER_ENV_NAMES]) {
    const d = editDistance(name, known);
    if (d < bestD) [best, bestD] = [known, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 6)) ? best : undefined;
}

/**
 * Every QUALM_* variable of the environment must be one qualm reads: a misspelt setting would
 * otherwise be ignored silently and its default used (the config file refuses unknown keys too).
 */
function unknownEnvNames(env: Source, problems: ConfigProblem[]): void {
  const other = new Set(OTHER_ENV_NAMES);
  for (const key of Object.keys(env)) {
    if (!key.startsWith('QUALM_') || SETTING_ENV_NAMES.has(key) || other.has(key) || env[key] === undefined) continue;
    const near = nearestName(key);
    problems.push({ key, message: `not a qualm setting${near === undefined ? '' : ` (did you mean ${near}?)`}` });
  }
}

/** The validated configuration: one field per option of OPTIONS. */
export type Config = { -readonly [K in OptionName]: z.output<(typeof OPTIONS)[K]['schema']> };

type Source = Readonly<Record<string, string | undefined>>;

function readConfigFile(path: string, problems: ConfigProblem[]): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push({ key: CONFIG_FILE_ENV, message: `cannot read ${path}: ${(err as Error).message}` });
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    problems.push({ key: CONFIG_FILE_ENV, message: `${path} is not valid JSON: ${(err as Error).message}` });
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push({ key: CONFIG_FILE_ENV, message: `${path} must hold a JSON object of option names to values` });
    return {};
  }
  const known = new Set<string>(Object.values(OPTIONS).map((o) => o.env));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key)) {
      problems.push({ key: `${path}:${key}`, message: 'unknown option' });
      continue;
    }
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[key] = String(value);
    } else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      out[key] = value.join(',');
    } else {
      problems.push({ key: `${path}:${key}`, message: 'expected a string, number or boolean' });
    }
  }
  return out;
}

function crossChecks(c: Config, problems: ConfigProblem[]): void {
  if (c.efSearch < c.k) {
    problems.push({ key: OPTIONS.efSearch.env, message: `must be at least QUALM_K (${c.k}), got ${c.efSearch}` });
  }
  if (c.heartbeatIntervalMs * 3 > c.sessionTimeoutMs) {
    problems.push({
      key: OPTIONS.heartbeatIntervalMs.env,
      message: `must be at most a third of QUALM_SESSION_TIMEOUT_MS (${c.sessionTimeoutMs}), got ${c.heartbeatIntervalMs}`,
    });
  }
  if (c.flagPolicy === 'target_rate' && (c.targetFlagRate <= 0 || c.targetFlagRate >= 1)) {
    problems.push({ key: OPTIONS.targetFlagRate.env, message: 'must be strictly between 0 and 1 with QUALM_FLAG_POLICY=target_rate' });
  }
  if (c.kafkaSaslMechanism !== undefined) {
    if (c.kafkaSaslUsername === undefined) {
      problems.push({ key: OPTIONS.kafkaSaslUsername.env, message: 'required when KAFKA_SASL_MECHANISM is set' });
    }
    if (c.kafkaSaslPassword === undefined) {
      problems.push({ key: OPTIONS.kafkaSaslPassword.env, message: 'required (or KAFKA_SASL_PASSWORD_FILE) when KAFKA_SASL_MECHANISM is set' });
    }
  }
  const topics = [
    [OPTIONS.reviewTopic.env, c.reviewTopic],
    [OPTIONS.dlqTopic.env, c.dlqTopic],
    [OPTIONS.scoresTopic.env, c.scoresTopic],
  ] as const;
  for (const [key, t] of topics) {
    if (t === c.inputTopic) problems.push({ key, message: `must differ from QUALM_INPUT_TOPIC (${t})` });
  }
}

/**
 * Reads every option from `env` (and QUALM_CONFIG_FILE when set), validates all of them,
 * and throws one ConfigError listing every problem with the key that caused it.
 * `overrides` (for the CLI and tests) take precedence over both.
 */
export function loadConfig(env: Source = process.env, overrides: Source = {}): Config {
  const problems: ConfigProblem[] = [];
  unknownEnvNames(env, problems);
  const filePath = overrides[CONFIG_FILE_ENV] ?? env[CONFIG_FILE_ENV];
  const fromFile = filePath !== undefined && filePath !== '' ? readConfigFile(filePath, problems) : {};
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const raw = overrides[spec.env] ?? env[spec.env] ?? fromFile[spec.env] ?? spec.default;
    if (raw === undefined) {
      out[name] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      out[name] = result.data;
    } else {
      const detail = result.error.issues.map((i) => i.message).join('; ');
      const got = (spec as OptionSpec).secret === true ? 'a value not shown' : JSON.stringify(raw);
      problems.push({ key: spec.env, message: `${detail} (got ${got})` });
    }
  }
  if (problems.length === 0) resolveCredentialFiles(out as Config, problems);
  if (problems.length === 0) crossChecks(out as Config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Config;
}

/** The manifest path that belongs to a model path: same name, .json extension. */
export function modelManifestPath(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.json';
}
