export type {
  ConsumedBatch,
  ConsumerEvent,
  Follower,
  GroupConsumer,
  GroupConsumerOptions,
  HeaderValue,
  Headers,
  InRecord,
  OutRecord,
  PartitionTransactions,
  PartitionTransactionsOptions,
  Publisher,
  ReadToEndOptions,
  TopicRecords,
  TransactionWork,
  Transport,
} from './types.js';
export { chunkByBytes, messageBytes, PRODUCE_CHUNK_BYTES } from './chunk.js';
export { KafkajsTransport } from './kafkajs/transport.js';
export { transactionalId } from './kafkajs/transactions.js';
