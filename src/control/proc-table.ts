import type { Kv } from '../nats/types.js';
import type { Status } from '../proc/types.js';
import { decodeProcRecord, encode, type ProcRecord } from './protocol/index.js';

const NOTHING = new Uint8Array(0);
/** The index's own key (no pid has a leading underscore): set once it holds every live proc. */
export const INDEX_COMPLETE = '_complete';

/** Bound on compare-and-set retries for one transition; contention past it is a bug, not load. */
export const PROC_CAS_ATTEMPTS_MAX = 16;
/** How many live records a recovery reads at once (liveRecords). */
const LIVE_READS_PARALLEL = 32;

export class ProcTableError extends Error {
  readonly type = 'proc-table';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`proc table: ${detail}`, options);
    this.name = 'ProcTableError';
  }
}

/**
 * The proc table in JetStream KV: one record per pid, changed only by compare-and-set on the record's
 * revision. Terminal statuses are written once: a transition on an exited record is refused, so a
 * duplicate exit report (a retry, a node manager's restart) cannot overwrite or double-count.
 */
export class ProcTable {
  /** `live`: the index of procs not yet exited (BUCKET.live); without it, live() reads the whole table. */
  constructor(
    readonly kv: Kv,
    readonly live?: Kv,
  ) {}

  /**
   * The index entry goes first, and the record only once it is there: an entry without a record is
   * dropped by liveRecords(), but a record without one would be invisible to the next scheduler (a
   * queued proc nobody would ever run; found by the simulator, message-chaos seed 22, when the two
   * writes went in parallel and only the record landed).
   */
  async create(record: ProcRecord): Promise<number> {
    await this.live?.put(record.pid, NOTHING);
    return this.kv.create(record.pid, encode(record));
  }

  async get(pid: string): Promise<{ record: ProcRecord; revision: number } | undefined> {
    const e = await this.kv.get(pid);
    if (e === null || e.value === null) return undefined;
    const record = decodeProcRecord(e.value);
    if (record === undefined) throw new ProcTableError(`record ${pid} is malformed`);
    return { record, revision: e.revision };
  }

  /**
   * Applies `change` with CAS. `change` returns the new record, or undefined to leave it alone (for
   * example: already exited). Resolves with the record written, or undefined when nothing changed.
   */
  async transition(pid: string, change: (r: ProcRecord) => ProcRecord | undefined): Promise<ProcRecord | undefined> {
    for (let i = 0; i < PROC_CAS_ATTEMPTS_MAX; i++) {
      const cur = await this.get(pid);
      if (cur === undefined) return undefined;
      const next = change(cur.record);
      if (next === undefined) return undefined;
      try {
        await this.kv.update(pid, encode(next), cur.revision);
        this.#ended(next);
        return next;
      } catch (e) {
        if ((e as { type?: string }).type === 'wrong-revision') continue;
        throw e;
      }
    }
    throw new ProcTableError(`gave up on ${pid} after ${PROC_CAS_ATTEMPTS_MAX} conflicting updates`);
  }

  /**
   * Writes `next` if the record is still at `revision` (no read first: the hot path). Resolves with
   * the new revision, or undefined when the record has moved on — then use transition().
   */
  async writeAt(next: ProcRecord, revision: number): Promise<number | undefined> {
    try {
      const written = await this.kv.update(next.pid, encode(next), revision);
      this.#ended(next);
      return written;
    } catch (e) {
      if ((e as { type?: string }).type === 'wrong-revision') return undefined;
      throw e;
    }
  }

  /** Writes the terminal status once. Resolves true if this call wrote it. */
  async exit(pid: string, status: Status): Promise<boolean> {
    const r = await this.transition(pid, (rec) => (rec.state === 'exited' ? undefined : { ...rec, state: 'exited', status }));
    return r !== undefined;
  }

  /**
   * Ends every record of `realm` still in the live index (with `status`): a removed realm's leftovers.
   * Returns the pids it ended. Reads only the realm's index keys.
   */
  async endRealm(realm: string, status: Status): Promise<string[]> {
    if (this.live === undefined) return [];
    const ended: string[] = [];
    for (const pid of await this.live.keys(`${realm}.>`)) {
      if (await this.exit(pid, status)) ended.push(pid);
      else await this.live.delete(pid); // exited already (its index delete was lost), or its create never landed
    }
    return ended;
  }

  /** An exit leaves the index; a delete that does not land is dropped by the next live(). */
  #ended(r: ProcRecord): void {
    if (r.state === 'exited') this.live?.delete(r.pid).catch(() => {});
  }

  /**
   * The records of procs not yet exited, read through the index: as fast with a million exited procs
   * in the table as with none. Entries whose record has exited or is missing are dropped on the way. A
   * table older than its index (no COMPLETE mark yet) is read whole once, and the index built from it.
   * `repair: false` (a client) reads and writes nothing more than it must.
   */
  async liveRecords(options: { repair?: boolean } = {}): Promise<ProcRecord[]> {
    const repair = options.repair !== false;
    if (this.live === undefined || (!repair && (await this.live.get(INDEX_COMPLETE)) === null)) return (await this.list()).filter((r) => r.state !== 'exited');
    if ((await this.live.get(INDEX_COMPLETE)) === null) return this.#buildIndex(this.live);
    const live = this.live;
    const pids = (await live.keys()).filter((pid) => pid !== INDEX_COMPLETE);
    const out: ProcRecord[] = [];
    // Reads LIVE_READS_PARALLEL at a time: a failover's recovery waits for them (one round trip each,
    // in turn, was seconds of a storm's live procs under load).
    for (let i = 0; i < pids.length; i += LIVE_READS_PARALLEL) {
      const batch = pids.slice(i, i + LIVE_READS_PARALLEL);
      const read = await Promise.all(batch.map((pid) => this.get(pid))); // a failed read fails the whole: a live proc must not be forgotten
      await Promise.all(
        read.map((cur, j) => {
          if (cur !== undefined && cur.record.state !== 'exited') out.push(cur.record);
          else if (repair) return live.delete(batch[j]!).catch(() => {});
          return undefined;
        }),
      );
    }
    return out;
  }

  async #buildIndex(live: Kv): Promise<ProcRecord[]> {
    const out = (await this.list()).filter((r) => r.state !== 'exited');
    for (const r of out) await live.put(r.pid, NOTHING);
    await live.put(INDEX_COMPLETE, NOTHING);
    return out;
  }

  /** One page of the whole table in pid order: up to `limit` records after the pid `after`. */
  async page(limit: number, after?: string): Promise<{ records: ProcRecord[]; next?: string }> {
    const keys = (await this.kv.keys()).sort();
    const from = after === undefined ? 0 : keys.findIndex((k) => k > after);
    const slice = from < 0 ? [] : keys.slice(from, from + limit);
    const records: ProcRecord[] = [];
    for (const key of slice) {
      const cur = await this.get(key).catch(() => undefined);
      if (cur !== undefined) records.push(cur.record);
    }
    const more = from >= 0 && from + limit < keys.length;
    return more ? { records, next: slice[slice.length - 1]! } : { records };
  }

  async list(): Promise<ProcRecord[]> {
    const out: ProcRecord[] = [];
    for (const key of await this.kv.keys()) {
      const cur = await this.get(key).catch(() => undefined);
      if (cur !== undefined) out.push(cur.record);
    }
    return out;
  }
}
