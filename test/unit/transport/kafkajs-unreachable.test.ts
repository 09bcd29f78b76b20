import assert from 'node:assert/strict';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { isUnreachable } from '../../../src/transport/kafkajs/transport.js';

/** A kafkajs error as kafkajs itself builds it (its typings leave out the constructors' arguments). */
const make = (C: unknown, ...args: unknown[]): Error => new (C as new (...a: unknown[]) => Error)(...args);
const { KafkaJSConnectionError, KafkaJSGroupCoordinatorNotFound, KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs;

test('isUnreachable: the errors of a broker out of reach, also wrapped as a cause; not other failures', () => {
  assert.equal(isUnreachable(make(KafkaJSGroupCoordinatorNotFound, 'Failed to find group coordinator')), true);
  assert.equal(isUnreachable(make(KafkaJSConnectionError, 'Connection error: connect ECONNREFUSED 127.0.0.1:9092')), true);
  // As kafkajs's retrier rejects when it gives up: a non-retriable error whose cause is the original.
  const coordinator = make(KafkaJSGroupCoordinatorNotFound, 'Failed to find group coordinator');
  assert.equal(isUnreachable(make(KafkaJSNonRetriableError, coordinator, { cause: coordinator })), true);
  assert.equal(isUnreachable(make(KafkaJSNonRetriableError, 'Topic authorization failed')), false);
  assert.equal(isUnreachable(make(KafkaJSProtocolError, 'Not authorized to access group')), false);
  assert.equal(isUnreachable(new Error('eachBatch threw')), false);
  assert.equal(isUnreachable(undefined), false);
});
