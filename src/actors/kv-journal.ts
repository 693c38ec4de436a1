import { JournalConflictError, JournalCorruptError, InvalidOptionError } from './errors.js';
import type { Journal, JournalEntry, Snapshot } from './persistent.js';
import type { Kv } from '../nats/types.js';

export const JOURNAL_BUCKET = 'sigma_journal';
export const SNAPSHOT_BUCKET = 'sigma_snapshots';
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** Sequence numbers are zero-padded in keys so that a key listing sorts in event order. */
const SEQ_DIGITS = 12;

const utf8 = new TextEncoder();
const text = new TextDecoder();
const encode = (v: unknown): Uint8Array => utf8.encode(JSON.stringify(v));
/** Events and snapshots are JSON this journal wrote; a value that does not parse is kept as undefined. */
const decodeJson = (b: Uint8Array): unknown => {
  try {
    return JSON.parse(text.decode(b));
  } catch {
    return undefined;
  }
};

/**
 * The persistent actors' journal in JetStream KV — each realm's procs have one (ProcContext.journal, in
 * the realm's bucket: src/control/protocol/journal.ts), so that a service's state (carts, reservations)
 * survives a restart of the service. One key per append (a batch: PersistentActor's group commit puts
 * many commands' events in one), `<id>.<first seq>`, its value the JSON array of the batch's events; a
 * snapshot under `<id>` (ids have no dots, so events and snapshots may share a bucket). Reads are key
 * gets from batch to batch, from a known sequence on until the first missing key: no consumer, no key
 * listing, which a realm's NATS user may not make (src/cluster/nats-users.ts).
 *
 * Appending is a create of the key after the last batch, which succeeds for one writer only: the
 * compare-and-set that keeps two actors under one persistence id from interleaving. It holds with
 * batches because a writer's view of the journal is always a prefix of the one chain of batches: its
 * sequence only ever comes from an append's result or from reading whole batches (a snapshot's seq is
 * such a sequence too), so it ends where a batch ends, and `expectedSeq + 1` is the key of the true next
 * batch if one exists. A writer that is behind therefore meets that key and is refused; it cannot land
 * in the middle of someone else's batch, where no key would stop it.
 */
export class KvJournal implements Journal {
  constructor(
    private readonly events: Kv,
    private readonly snapshots: Kv,
  ) {}

  async append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    checkId(persistenceId);
    if (events.length === 0) return expectedSeq;
    const first = expectedSeq + 1;
    try {
      await this.events.create(key(persistenceId, first), encode(events));
    } catch (e) {
      if ((e as { type?: string }).type !== 'key-exists') throw e;
      throw new JournalConflictError(persistenceId, expectedSeq, await this.#lastSeq(persistenceId, first));
    }
    return expectedSeq + events.length;
  }

  /**
   * Appends are gapless (each creates the key after the last batch), so the first missing key ends the
   * journal; each get yields a whole batch. `afterSeq` must be 0 or a batch's end (the Journal contract):
   * there is no key inside a batch, so a read from there would look like the end of the journal.
   */
  async *read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry> {
    checkId(persistenceId);
    for (let seq = afterSeq + 1; ; ) {
      const batch = await this.#batch(persistenceId, seq);
      if (batch === undefined) return;
      for (const event of batch) yield { seq: seq++, event };
    }
  }

  async saveSnapshot(persistenceId: string, snapshot: Snapshot): Promise<void> {
    checkId(persistenceId);
    await this.snapshots.put(persistenceId, encode(snapshot));
  }

  async loadSnapshot(persistenceId: string): Promise<Snapshot | undefined> {
    checkId(persistenceId);
    const e = await this.snapshots.get(persistenceId);
    return e?.value == null ? undefined : (decodeJson(e.value) as Snapshot);
  }

  /** The batch whose first event is `first`, or undefined past the end. */
  async #batch(persistenceId: string, first: number): Promise<unknown[] | undefined> {
    const k = key(persistenceId, first);
    const e = await this.events.get(k);
    if (e === null) return undefined;
    const batch = decodeJson(e.value);
    // Its length is where the next batch starts: without it the journal cannot be read on, gaplessly.
    if (!Array.isArray(batch) || batch.length === 0) throw new JournalCorruptError(persistenceId, k, 'not a non-empty JSON array of events');
    return batch;
  }

  /** The last sequence, knowing that the batch at `present` is taken: for a conflict's message. */
  async #lastSeq(persistenceId: string, present: number): Promise<number> {
    let first = present;
    for (let batch = await this.#batch(persistenceId, first); batch !== undefined; batch = await this.#batch(persistenceId, first)) first += batch.length;
    return first - 1;
  }
}

function key(id: string, seq: number): string {
  return `${id}.${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

function checkId(id: string): void {
  if (!ID_RE.test(id)) throw new InvalidOptionError('persistenceId', `"${id}" must match ${ID_RE} to be a JetStream key`);
}
