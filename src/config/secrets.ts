import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { OPTIONS } from './options.js';

/**
 * Credentials and TLS material read from files, as Kubernetes mounts secrets: every byte of a
 * file is used, verbatim (no trimming, not even of a final line break), and no value is ever
 * put into a message or a log line; messages name the setting and the path only.
 */

type ReadFile = (path: string) => Buffer;

/** The settings this file reads (a structural part of the Config of load.ts). */
export interface CredentialSettings {
  kafkaSsl: boolean;
  kafkaSslCaFile: string | undefined;
  kafkaSslCertFile: string | undefined;
  kafkaSslKeyFile: string | undefined;
  kafkaSslKeyPassphraseFile: string | undefined;
  kafkaSaslPassword: string | undefined;
  kafkaSaslPasswordFile: string | undefined;
}

const readBytes: ReadFile = (path) => readFileSync(path);

/** The TLS options of the Kafka client, from the KAFKA_SSL_* files. */
export interface TlsMaterial {
  ca?: string[];
  cert?: string;
  key?: string;
  passphrase?: string;
}

/** Where the SASL password comes from: the setting to name when the broker refuses it. */
export function saslPasswordKey(c: Pick<CredentialSettings, 'kafkaSaslPasswordFile'>): string {
  return c.kafkaSaslPasswordFile === undefined ? OPTIONS.kafkaSaslPassword.env : OPTIONS.kafkaSaslPasswordFile.env;
}

function readSetting(key: string, path: string, problems: ConfigProblem[], read: ReadFile): string | undefined {
  let bytes: Buffer;
  try {
    bytes = read(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push({ key, message: `cannot read ${path}${code === undefined ? '' : ` (${code})`}` });
    return undefined;
  }
  if (bytes.length === 0) {
    problems.push({ key, message: `${path} is empty` });
    return undefined;
  }
  return bytes.toString('utf8');
}

/** PEM certificates in `text`, one string each; [] when there is none. */
function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

function checkCertificates(key: string, path: string, text: string, problems: ConfigProblem[]): X509Certificate[] {
  const pems = pemCertificates(text);
  if (pems.length === 0) {
    problems.push({ key, message: `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` });
    return [];
  }
  const out: X509Certificate[] = [];
  for (const [i, pem] of pems.entries()) {
    try {
      out.push(new X509Certificate(pem));
    } catch (err) {
      problems.push({ key, message: `certificate ${i + 1} of ${path} cannot be parsed: ${(err as Error).message}` });
    }
  }
  return out;
}

/**
 * Reads and checks the KAFKA_SSL_* files: each readable, the certificates parseable, the key
 * decryptable with its passphrase and the one of the certificate. Problems go to `problems`
 * with the setting that caused them; returns what the Kafka client needs.
 */
export function readTlsMaterial(c: CredentialSettings, problems: ConfigProblem[], read: ReadFile = readBytes): TlsMaterial {
  const keys = {
    ca: OPTIONS.kafkaSslCaFile.env,
    cert: OPTIONS.kafkaSslCertFile.env,
    key: OPTIONS.kafkaSslKeyFile.env,
    pass: OPTIONS.kafkaSslKeyPassphraseFile.env,
  };
  const set: Array<[string, string | undefined]> = [
    [keys.ca, c.kafkaSslCaFile],
    [keys.cert, c.kafkaSslCertFile],
    [keys.key, c.kafkaSslKeyFile],
    [keys.pass, c.kafkaSslKeyPassphraseFile],
  ];
  const out: TlsMaterial = {};
  if (!c.kafkaSsl) {
    for (const [key, v] of set) if (v !== undefined) problems.push({ key, message: `is set, but KAFKA_SSL is false (set KAFKA_SSL=true to connect with TLS)` });
    return out;
  }
  if ((c.kafkaSslCertFile === undefined) !== (c.kafkaSslKeyFile === undefined)) {
    const [key, other] = c.kafkaSslCertFile === undefined ? [keys.key, keys.cert] : [keys.cert, keys.key];
    problems.push({ key, message: `needs ${other} too (a client certificate and its private key go together)` });
  }
  if (c.kafkaSslKeyPassphraseFile !== undefined && c.kafkaSslKeyFile === undefined) {
    problems.push({ key: keys.pass, message: `is set, but ${keys.key} is not` });
  }
  if (c.kafkaSslCaFile !== undefined) {
    const text = readSetting(keys.ca, c.kafkaSslCaFile, problems, read);
    if (text !== undefined && checkCertificates(keys.ca, c.kafkaSslCaFile, text, problems).length > 0) out.ca = pemCertificates(text);
  }
  let cert: X509Certificate | undefined;
  if (c.kafkaSslCertFile !== undefined) {
    const text = readSetting(keys.cert, c.kafkaSslCertFile, problems, read);
    if (text !== undefined) {
      cert = checkCertificates(keys.cert, c.kafkaSslCertFile, text, problems)[0];
      out.cert = text;
    }
  }
  if (c.kafkaSslKeyPassphraseFile !== undefined) {
    const pass = readSetting(keys.pass, c.kafkaSslKeyPassphraseFile, problems, read);
    if (pass !== undefined) out.passphrase = pass;
  }
  if (c.kafkaSslKeyFile !== undefined) {
    const text = readSetting(keys.key, c.kafkaSslKeyFile, problems, read);
    if (text !== undefined) {
      out.key = text;
      try {
        const key = createPrivateKey(out.passphrase === undefined ? { key: text } : { key: text, passphrase: out.passphrase });
        if (cert !== undefined && !cert.checkPrivateKey(key)) {
          problems.push({ key: keys.key, message: `${c.kafkaSslKeyFile} is not the private key of the certificate in ${keys.cert}` });
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const encrypted = /ENCRYPTED/.test(text) || code === 'ERR_MISSING_PASSPHRASE';
        if (encrypted && out.passphrase === undefined) {
          problems.push({ key: keys.key, message: `${c.kafkaSslKeyFile} is encrypted; set ${keys.pass}` });
        } else if (encrypted) {
          problems.push({ key: keys.pass, message: `does not decrypt ${keys.key} (${c.kafkaSslKeyFile})` });
        } else {
          problems.push({ key: keys.key, message: `${c.kafkaSslKeyFile} holds no usable PEM private key${code === '' ? '' : ` (${code})`}` });
        }
      }
    }
  }
  return out;
}

/**
 * Resolves the credential files of a parsed configuration in place: KAFKA_SASL_PASSWORD_FILE
 * becomes kafkaSaslPassword (verbatim), and the KAFKA_SSL_* files are read and checked once so
 * that a bad one stops the start naming its setting. Run before the cross-option checks.
 */
export function resolveCredentialFiles(c: CredentialSettings, problems: ConfigProblem[], read: ReadFile = readBytes): void {
  const fileKey = OPTIONS.kafkaSaslPasswordFile.env;
  if (c.kafkaSaslPasswordFile !== undefined) {
    if (c.kafkaSaslPassword !== undefined) {
      problems.push({ key: fileKey, message: `is set together with ${OPTIONS.kafkaSaslPassword.env}; set only one of ${OPTIONS.kafkaSaslPassword.env} and ${fileKey}` });
    } else {
      const password = readSetting(fileKey, c.kafkaSaslPasswordFile, problems, read);
      if (password !== undefined) c.kafkaSaslPassword = password;
    }
  }
  readTlsMaterial(c, problems, read);
}

/** The TLS material of a configuration loadConfig accepted; throws a ConfigError if a file changed since. */
export function tlsMaterial(c: CredentialSettings): TlsMaterial {
  const problems: ConfigProblem[] = [];
  const out = readTlsMaterial(c, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
