import type { Headers } from '../nats/types.js';
import { matches } from '../nats/subject.js';
import type { Clock } from '../ports/types.js';
import { assert } from '../assert.js';

/**
 * The simulated JetStream store: one stream's messages with NATS's limits (max age, max messages,
 * per-subject history), msgId dedup within a window, expected-last-subject-sequence checks (KV's
 * compare-and-set) and rollup (KV purge). Expiry is evaluated lazily from the injected clock before
 * every operation, which is indistinguishable from eager expiry because expiry sends no events.
 * Readers and consumers (./nats.ts) follow it by sequence through `next` and are told of appends.
 */
export interface Stored {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers | undefined;
  readonly atMs: number;
}

export interface StoreConfig {
  subjects: readonly string[];
  retention: 'limits' | 'workqueue';
  duplicateWindowMs: number;
  maxAgeMs: number | undefined;
  msgsMax: number | undefined;
  /** Messages kept per subject (KV history). */
  perSubjectMax: number | undefined;
}

/** The expected last sequence of a subject did not match (mapped to KeyExists/WrongRevision by KV). */
export class WrongLastSeq extends Error {
  constructor(readonly actual: number) {
    super(`wrong last sequence: ${actual}`);
  }
}

interface Follower {
  seq: number;
  kick: () => void;
}

export class SimStore {
  readonly #msgs = new Map<number, Stored>();
  /** Sequences in ascending order, with removed ones skipped lazily (compacted now and then). */
  #order: number[] = [];
  #orderHead = 0;
  /** Removed sequences still in #order (KV overwrites remove from the middle). */
  #orderDead = 0;
  readonly #bySubject = new Map<string, number[]>();
  readonly #dedup = new Map<string, { seq: number; atMs: number }>();
  #lastSeq = 0;
  /**
   * Told of appends (readers and consumers kick their deliveries): those following one literal subject
   * only when it is appended to (most are KV watches of one key), those with wildcards on every append.
   */
  readonly #followLiteral = new Map<string, Set<Follower>>();
  readonly #followWild = new Set<Follower>();
  #followSeq = 0;
  /**
   * Replicas frozen by a cut (a simulated cluster's minority server, by index): each subject's newest
   * message as it was at the cut, saved just before the first append after it. Empty unless partitioned.
   */
  readonly #frozen = new Map<number, Map<string, Stored | null>>();
  /** Told of every message stored, with the message (the simulator's observers: trace, invariants). */
  readonly taps = new Set<(m: Stored) => void>();

  constructor(
    readonly name: string,
    readonly config: StoreConfig,
    private readonly clock: Clock,
  ) {}

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Calls `kick` after each append that `filter` matches; returns the unfollow. */
  follow(filter: string, kick: () => void): () => void {
    const f: Follower = { seq: this.#followSeq++, kick };
    if (isWild(filter)) {
      this.#followWild.add(f);
      return () => this.#followWild.delete(f);
    }
    const set = this.#followLiteral.get(filter) ?? new Set();
    this.#followLiteral.set(filter, set.add(f));
    return () => {
      set.delete(f);
      if (set.size === 0 && this.#followLiteral.get(filter) === set) this.#followLiteral.delete(filter);
    };
  }

  freeze(viewer: number): void {
    if (!this.#frozen.has(viewer)) this.#frozen.set(viewer, new Map());
  }

  thaw(viewer: number): void {
    this.#frozen.delete(viewer);
  }

  /** The newest message on a subject as a frozen replica sees it (the live one if not frozen). */
  lastSeenBy(viewer: number, subject: string): Stored | undefined {
    const f = this.#frozen.get(viewer);
    if (f === undefined || !f.has(subject)) return this.last(subject);
    return f.get(subject) ?? undefined;
  }

  captures(subject: string): boolean {
    return this.config.subjects.some((f) => matches(f, subject));
  }

  info(): { messages: number; firstSeq: number; lastSeq: number } {
    this.prune();
    const first = this.#firstLive();
    return { messages: this.#msgs.size, firstSeq: first ?? this.#lastSeq + 1, lastSeq: this.#lastSeq };
  }

  get(seq: number): Stored | undefined {
    this.prune();
    return this.#msgs.get(seq);
  }

  /** The newest retained message on a subject. */
  last(subject: string): Stored | undefined {
    this.prune();
    const seqs = this.#bySubject.get(subject);
    return seqs === undefined || seqs.length === 0 ? undefined : this.#msgs.get(seqs[seqs.length - 1]!);
  }

  /** Retained subjects matching a filter with their newest message, oldest first. */
  lastPerSubject(filter: string): Stored[] {
    this.prune();
    const out: Stored[] = [];
    for (const [subject, seqs] of this.#bySubject) if (seqs.length > 0 && matches(filter, subject)) out.push(this.#msgs.get(seqs[seqs.length - 1]!)!);
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** The first retained message after `seq` whose subject matches `filter`, and how far it scanned. */
  next(afterSeq: number, filter: string): { msg: Stored | undefined; scannedTo: number } {
    this.prune();
    if (!isWild(filter)) {
      // One subject: its own (short) history, not the whole stream.
      for (const seq of this.#bySubject.get(filter) ?? []) if (seq > afterSeq) return { msg: this.#msgs.get(seq), scannedTo: seq };
      return { msg: undefined, scannedTo: this.#lastSeq };
    }
    let i = this.#lowerBound(afterSeq + 1);
    for (; i < this.#order.length; i++) {
      const m = this.#msgs.get(this.#order[i]!);
      if (m !== undefined && matches(filter, m.subject)) return { msg: m, scannedTo: m.seq };
    }
    return { msg: undefined, scannedTo: this.#lastSeq };
  }

  append(subject: string, data: Uint8Array, headers: Headers | undefined, o: { msgId?: string; expectedLastSubjectSeq?: number; rollup?: boolean } = {}): { seq: number; duplicate: boolean } {
    this.prune();
    if (o.msgId !== undefined) {
      const seen = this.#dedup.get(o.msgId);
      if (seen !== undefined) return { seq: seen.seq, duplicate: true };
    }
    if (o.expectedLastSubjectSeq !== undefined) {
      const actual = this.last(subject)?.seq ?? 0;
      if (actual !== o.expectedLastSubjectSeq) throw new WrongLastSeq(actual);
    }
    for (const f of this.#frozen.values()) if (!f.has(subject)) f.set(subject, this.last(subject) ?? null);
    const seq = ++this.#lastSeq;
    const atMs = this.clock.nowMs();
    assert(this.#order.length <= this.#orderHead || this.#order[this.#order.length - 1]! < seq, `stream ${this.name}: sequences increase`);
    const stored: Stored = { seq, subject, data, headers: o.msgId === undefined ? headers : { ...headers, 'Nats-Msg-Id': o.msgId }, atMs };
    this.#msgs.set(seq, stored);
    this.#order.push(seq);
    const seqs = this.#bySubject.get(subject) ?? [];
    seqs.push(seq);
    this.#bySubject.set(subject, seqs);
    if (o.msgId !== undefined) this.#dedup.set(o.msgId, { seq, atMs });
    if (o.rollup === true) for (const s of seqs.slice(0, -1)) this.remove(s);
    const perSubjectMax = this.config.perSubjectMax;
    if (perSubjectMax !== undefined) while (seqs.length > perSubjectMax) this.remove(seqs[0]!);
    if (this.config.msgsMax !== undefined) while (this.#msgs.size > this.config.msgsMax) this.remove(this.#firstLive()!);
    for (const t of this.taps) t(stored);
    // Kicked in the order they started following, wherever they are indexed.
    const literal = this.#followLiteral.get(subject);
    const kicks = literal === undefined ? [] : [...literal];
    const n = kicks.length;
    if (this.#followWild.size > 0) kicks.push(...this.#followWild);
    if (n > 0 && kicks.length > n) kicks.sort((a, b) => a.seq - b.seq);
    for (const f of kicks) f.kick();
    return { seq, duplicate: false };
  }

  remove(seq: number): void {
    const m = this.#msgs.get(seq);
    if (m === undefined) return;
    this.#msgs.delete(seq);
    this.#orderDead++;
    if (this.#orderDead > 4096 && this.#orderDead * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead).filter((x) => this.#msgs.has(x));
      this.#orderHead = 0;
      this.#orderDead = 0;
    }
    const seqs = this.#bySubject.get(m.subject)!;
    seqs.splice(seqs.indexOf(seq), 1);
    if (seqs.length === 0) this.#bySubject.delete(m.subject);
  }

  /** Drops what is past max age and dedup entries past the window. */
  prune(): void {
    const now = this.clock.nowMs();
    const maxAge = this.config.maxAgeMs;
    if (maxAge !== undefined) {
      for (let first = this.#firstLive(); first !== undefined; first = this.#firstLive()) {
        if (now - this.#msgs.get(first)!.atMs < maxAge) break;
        this.remove(first);
      }
    }
    for (const [id, d] of this.#dedup) {
      if (now - d.atMs < this.config.duplicateWindowMs) break; // insertion order is time order
      this.#dedup.delete(id);
    }
  }

  #firstLive(): number | undefined {
    while (this.#orderHead < this.#order.length && !this.#msgs.has(this.#order[this.#orderHead]!)) {
      this.#orderHead++;
      this.#orderDead--;
    }
    if (this.#orderHead > 4096 && this.#orderHead * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead);
      this.#orderHead = 0;
    }
    return this.#order[this.#orderHead];
  }

  #lowerBound(seq: number): number {
    let lo = this.#orderHead;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#order[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function isWild(filter: string): boolean {
  return filter.includes('*') || filter.includes('>');
}

/** Whether some subject matches both filters (streams may not overlap). */
export function overlaps(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    if (x[i] === '>' || y[i] === '>') return i < x.length && i < y.length;
    if (i === x.length || i === y.length) return x.length === y.length;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
}
