import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig, type Config } from '../../../src/config/index.js';
import { kafkaAccessProblem } from '../../../src/transport/kafkajs/client.js';

/** An error shaped as kafkajs makes them: a name, and a code, type or cause where it sets one. */
function kafkaError(name: string, message: string, fields: { code?: string; type?: string; cause?: Error } = {}): Error {
  const err = new Error(message, fields.cause === undefined ? undefined : { cause: fields.cause });
  err.name = name;
  return Object.assign(err, fields.code === undefined ? {} : { code: fields.code }, fields.type === undefined ? {} : { type: fields.type });
}
const base = loadConfig({ KAFKA_BROKERS: 'kafka-0:9093' });
const scram: Config = { ...base, kafkaSsl: true, kafkaSaslMechanism: 'scram-sha-512', kafkaSaslUsername: 'alice', kafkaSaslPassword: 'p4ss word ' };

/** A TLS failure as kafkajs reports it after its retries: the socket's error, wrapped. */
function tlsFailure(code: string, message: string): Error {
  const socket = kafkaError('KafkaJSConnectionError', `Connection error: ${message}`, { code });
  return kafkaError('KafkaJSNumberOfRetriesExceeded', socket.message, { cause: socket });
}

test('a refused SASL password names the setting it came from, the user and the mechanism, never the password', () => {
  const err = kafkaError('KafkaJSSASLAuthenticationError', 'SASL SCRAM SHA512 authentication failed: invalid credentials');
  const env = kafkaAccessProblem(err, scram);
  assert.equal(env?.code, 'QUALM_KAFKA_AUTH_FAILED');
  assert.equal(env?.problem.key, 'KAFKA_SASL_PASSWORD');
  assert.equal(env?.problem.message, 'authentication failed for user alice (SCRAM-SHA-512) at kafka-0:9093');
  const fromFile = kafkaAccessProblem(err, { ...scram, kafkaSaslPasswordFile: '/var/run/secrets/kafka/password', kafkaSaslPassword: 'p4ss word \n' });
  assert.equal(fromFile?.problem.key, 'KAFKA_SASL_PASSWORD_FILE');
  assert.match(fromFile?.problem.message ?? '', /password ends with a line break, which is used as part of the password/);
  assert.doesNotMatch(JSON.stringify([env, fromFile]), /p4ss/);
});

test('a mechanism the listener does not accept names KAFKA_SASL_MECHANISM', () => {
  const err = kafkaError('KafkaJSProtocolError', 'The broker does not support the requested SASL mechanism', { type: 'UNSUPPORTED_SASL_MECHANISM' });
  assert.equal(kafkaAccessProblem(err, scram)?.problem.key, 'KAFKA_SASL_MECHANISM');
});

test('an untrusted broker certificate names KAFKA_SSL_CA_FILE, or KAFKA_SSL when the system CAs were used', () => {
  const err = tlsFailure('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate');
  const withCa = kafkaAccessProblem(err, { ...scram, kafkaSslCaFile: '/etc/kafka/ca.pem' });
  assert.equal(withCa?.code, 'QUALM_KAFKA_TLS_FAILED');
  assert.equal(withCa?.problem.key, 'KAFKA_SSL_CA_FILE');
  assert.equal(withCa?.problem.message, "the broker's certificate is not trusted by /etc/kafka/ca.pem (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate)");
  const system = kafkaAccessProblem(err, scram);
  assert.equal(system?.problem.key, 'KAFKA_SSL');
  assert.match(system?.problem.message ?? '', /not trusted by the system's CAs \(set KAFKA_SSL_CA_FILE/);
});

test('a host the certificate does not name blames KAFKA_BROKERS; a refused or missing client certificate KAFKA_SSL_CERT_FILE', () => {
  assert.equal(kafkaAccessProblem(tlsFailure('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), scram)?.problem.key, 'KAFKA_BROKERS');
  const alert = tlsFailure('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', '80FCAAAD6A7F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42');
  assert.match(kafkaAccessProblem(alert, scram)?.problem.message ?? '', /requires a client certificate \(mutual TLS\); set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE \(ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: sslv3 alert bad certificate\)$/);
  assert.match(kafkaAccessProblem(alert, { ...scram, kafkaSslCertFile: '/c.pem', kafkaSslKeyFile: '/k.pem' })?.problem.message ?? '', /refused the client certificate \/c\.pem/);
});

test('a broker that is down, a timeout, or a TLS code without TLS configured is not a security problem (the caller retries)', () => {
  assert.equal(kafkaAccessProblem(tlsFailure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9093'), scram), undefined);
  assert.equal(kafkaAccessProblem(kafkaError('KafkaJSConnectionError', 'Connection timeout'), scram), undefined);
  assert.equal(kafkaAccessProblem(tlsFailure('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'x'), base), undefined);
  assert.equal(kafkaAccessProblem(new Error('boom'), scram), undefined);
});
