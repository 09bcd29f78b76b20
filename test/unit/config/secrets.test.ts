import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'qualm-secrets-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function refused(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('expected a ConfigError');
}

const SASL = { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'alice' };

test('a password from KAFKA_SASL_PASSWORD_FILE is used byte for byte: spaces and a final line break included', () => {
  const c = loadConfig({ ...SASL, KAFKA_SASL_PASSWORD_FILE: file('pw', ' two  spaces \n') });
  assert.equal(c.kafkaSaslPassword, ' two  spaces \n');
});

test('a password and a user name from the environment are not trimmed', () => {
  const c = loadConfig({ ...SASL, KAFKA_SASL_USERNAME: ' alice ', KAFKA_SASL_PASSWORD: '  pass word  ' });
  assert.equal(c.kafkaSaslPassword, '  pass word  ');
  assert.equal(c.kafkaSaslUsername, ' alice ');
});

test('a password and its file together are refused, naming both keys and neither value', () => {
  const err = refused({ ...SASL, KAFKA_SASL_PASSWORD: 'env-secret', KAFKA_SASL_PASSWORD_FILE: file('pw2', 'file-secret') });
  assert.deepEqual(err.problems.map((p) => p.key), ['KAFKA_SASL_PASSWORD_FILE']);
  assert.match(err.message, /KAFKA_SASL_PASSWORD_FILE: is set together with KAFKA_SASL_PASSWORD/);
  assert.doesNotMatch(err.message, /env-secret|file-secret/);
});

test('an unreadable or empty password file is refused naming the setting and the path', () => {
  const missing = join(dir, 'absent');
  assert.match(refused({ ...SASL, KAFKA_SASL_PASSWORD_FILE: missing }).message, new RegExp(`KAFKA_SASL_PASSWORD_FILE: cannot read ${missing} \\(ENOENT\\)`));
  assert.match(refused({ ...SASL, KAFKA_SASL_PASSWORD_FILE: file('empty', '') }).message, /KAFKA_SASL_PASSWORD_FILE: .*empty is empty/);
});

test('a SASL mechanism needs a password or a password file', () => {
  assert.match(refused(SASL).message, /KAFKA_SASL_PASSWORD: required \(or KAFKA_SASL_PASSWORD_FILE\)/);
});

test('TLS files without KAFKA_SSL=true, a certificate without its key, or a passphrase without a key are refused', () => {
  const ca = file('junk-ca.pem', 'not a certificate');
  assert.deepEqual(refused({ KAFKA_SSL_CA_FILE: ca }).problems.map((p) => p.key), ['KAFKA_SSL_CA_FILE']);
  assert.match(refused({ KAFKA_SSL_CA_FILE: ca }).message, /is set, but KAFKA_SSL is false/);
  const keys = (env: Record<string, string>): string[] => refused({ KAFKA_SSL: 'true', ...env }).problems.map((p) => p.key);
  assert.ok(keys({ KAFKA_SSL_CERT_FILE: ca }).includes('KAFKA_SSL_CERT_FILE'));
  assert.ok(keys({ KAFKA_SSL_KEY_PASSPHRASE_FILE: file('pass0', 'x') }).includes('KAFKA_SSL_KEY_PASSPHRASE_FILE'));
  assert.match(refused({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: ca }).message, /KAFKA_SSL_CA_FILE: .*junk-ca\.pem holds no PEM certificate/);
});

test('an encrypted client key needs its passphrase file, verbatim; a wrong passphrase names the passphrase file', () => {
  const passphrase = ' key pass ';
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const key = file('client.key', privateKey);
  // The key alone (no certificate): the pairing is checked elsewhere, so the cert problem is the only other one.
  const noPass = refused({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_FILE: key });
  assert.match(noPass.message, /KAFKA_SSL_KEY_FILE: .*client\.key is encrypted; set KAFKA_SSL_KEY_PASSPHRASE_FILE/);
  const wrong = refused({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_FILE: key, KAFKA_SSL_KEY_PASSPHRASE_FILE: file('pass1', passphrase.trim()) });
  assert.match(wrong.message, /KAFKA_SSL_KEY_PASSPHRASE_FILE: does not decrypt KAFKA_SSL_KEY_FILE/);
  const right = refused({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_FILE: key, KAFKA_SSL_KEY_PASSPHRASE_FILE: file('pass2', passphrase) });
  assert.deepEqual(right.problems.map((p) => p.key), ['KAFKA_SSL_KEY_FILE'], 'only the missing certificate is left');
  assert.match(right.message, /KAFKA_SSL_KEY_FILE: needs KAFKA_SSL_CERT_FILE too/);
});
