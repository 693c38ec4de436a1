import { JournalConflictError, InvalidOptionError } from './errors.js';
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
 * survives a restart of the service. One key per event, `<id>.<seq>`; a snapshot under `<id>` (ids have
 * no dots, so events and snapshots may share a bucket). Appending an event is a create of the next key,
 * which succeeds for one writer only — the compare-and-set that keeps two actors under one persistence
 * id from interleaving. Reads are key gets from a known sequence on until the first missing key: no
 * consumer, no key listing, which a realm's NATS user may not make (src/cluster/nats-users.ts).
 */
export class KvJournal implements Journal {
  constructor(
    private readonly events: Kv,
    private readonly snapshots: Kv,
  ) {}

  async append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    checkId(persistenceId);
    for (let i = 0; i < events.length; i++) {
      const seq = expectedSeq + i + 1;
      try {
        await this.events.create(key(persistenceId, seq), encode(events[i]));
      } catch (e) {
        if ((e as { type?: string }).type !== 'key-exists') throw e;
        throw new JournalConflictError(persistenceId, expectedSeq, await this.#lastSeq(persistenceId, seq));
      }
    }
    return expectedSeq + events.length;
  }

  /** Appends are gapless (each creates the next key), so the first missing key ends the journal. */
  async *read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry> {
    checkId(persistenceId);
    for (let seq = afterSeq + 1; ; seq++) {
      const e = await this.events.get(key(persistenceId, seq));
      if (e === null) return;
      yield { seq, event: decodeJson(e.value) };
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

  /** The last sequence, knowing that `present` is taken: for a conflict's message. */
  async #lastSeq(persistenceId: string, present: number): Promise<number> {
    let seq = present;
    while ((await this.events.get(key(persistenceId, seq + 1))) !== null) seq++;
    return seq;
  }
}

function key(id: string, seq: number): string {
  return `${id}.${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

function checkId(id: string): void {
  if (!ID_RE.test(id)) throw new InvalidOptionError('persistenceId', `"${id}" must match ${ID_RE} to be a JetStream key`);
}
