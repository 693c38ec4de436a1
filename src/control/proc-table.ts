import type { Kv } from '../nats/types.js';
import type { Status } from '../proc/types.js';
import { decodeProcRecord, encode, type ProcRecord } from './protocol/index.js';

/** Bound on compare-and-set retries for one transition; contention past it is a bug, not load. */
export const PROC_CAS_ATTEMPTS_MAX = 16;

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
  constructor(readonly kv: Kv) {}

  async create(record: ProcRecord): Promise<number> {
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
      return await this.kv.update(next.pid, encode(next), revision);
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

  async list(): Promise<ProcRecord[]> {
    const out: ProcRecord[] = [];
    for (const key of await this.kv.keys()) {
      const cur = await this.get(key).catch(() => undefined);
      if (cur !== undefined) out.push(cur.record);
    }
    return out;
  }
}
