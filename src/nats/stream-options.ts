import { InvalidArgumentError } from './errors.js';
import { checkFilter, checkName, checkPositiveInt, checkPositiveMs } from './subject.js';
import { DUPLICATE_WINDOW_MS_DEFAULT, type ConsumerOptions, type KvOptions, type StreamOptions } from './types.js';

/** Bound on subjects per stream (a stream is a table, not a catch-all). */
export const STREAM_SUBJECTS_MAX = 64;

export const CONSUMER_DEFAULTS = { fromSeq: 1, ackWaitMs: 30_000, deliverMax: -1, ackPendingMax: 1_000 } as const;

/** Checks shared by the real binding and the simulator, so both refuse the same configurations. */
export function checkStreamOptions(o: StreamOptions): void {
  if (!Array.isArray(o.subjects) || o.subjects.length === 0 || o.subjects.length > STREAM_SUBJECTS_MAX) {
    throw new InvalidArgumentError(`a stream needs 1..${STREAM_SUBJECTS_MAX} subjects, like ["sigma.queue.>"]`);
  }
  for (const s of o.subjects) checkFilter(s, 'stream subject');
  if (o.retention !== undefined && o.retention !== 'limits' && o.retention !== 'workqueue') throw new InvalidArgumentError(`retention is 'limits' or 'workqueue', got ${String(o.retention)}`);
  checkPositiveMs(o.duplicateWindowMs ?? DUPLICATE_WINDOW_MS_DEFAULT, 'duplicateWindowMs');
  if (o.maxAgeMs !== undefined) checkPositiveMs(o.maxAgeMs, 'maxAgeMs');
  if (o.msgsMax !== undefined) checkPositiveInt(o.msgsMax, 'msgsMax');
}

export function checkConsumerOptions(o: ConsumerOptions): void {
  if (o.fromSeq !== undefined) checkPositiveInt(o.fromSeq, 'fromSeq');
  if (o.filter !== undefined) checkFilter(o.filter, 'consumer filter');
  if (o.ackWaitMs !== undefined) checkPositiveMs(o.ackWaitMs, 'ackWaitMs');
  if (o.deliverMax !== undefined && o.deliverMax !== -1) checkPositiveInt(o.deliverMax, 'deliverMax (or -1 for unlimited)');
  if (o.ackPendingMax !== undefined) checkPositiveInt(o.ackPendingMax, 'ackPendingMax');
}

/** Values a KV bucket may keep per key (the server's limit). */
export const KV_HISTORY_MAX = 64;

export function checkKvOptions(bucket: string, o: KvOptions): void {
  checkName(bucket, 'KV bucket name');
  const history = o.history ?? 1;
  if (!Number.isSafeInteger(history) || history < 1 || history > KV_HISTORY_MAX) throw new InvalidArgumentError(`KV history must be an integer in 1..${KV_HISTORY_MAX}, got ${history}`);
  if (o.ttlMs !== undefined) checkPositiveMs(o.ttlMs, 'ttlMs');
  if (o.bytesMax !== undefined && (!Number.isSafeInteger(o.bytesMax) || o.bytesMax < 1)) throw new InvalidArgumentError(`KV bytesMax must be a positive integer, got ${o.bytesMax}`);
}
