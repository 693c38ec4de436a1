/**
 * The control plane's wire: one typed definition per NATS subject (subjects.ts), the messages they carry
 * (messages.ts), the KV buckets and their records (records.ts), and how bytes become values (wire.ts).
 * Everything a process reads from the wire goes through a decoder here that refuses what is malformed.
 */
export * from './messages.js';
export * from './records.js';
export * from './subjects.js';
export * from './wire.js';
export * from './rpc.js';
export * from './routes.js';
export * from './journal.js';
