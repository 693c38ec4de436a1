import { NatsPortError } from '../nats/errors.js';
import type { Bus, Kv, KvEntry, KvWatch, Msg, Subscription } from '../nats/types.js';
import type { Clock, Random, Timers } from '../ports/types.js';

/**
 * NATS in one process for the simulator, behind the same port as the real client and held to it by
 * the contract tests (test/nats-contract.test.ts). Time, timers and the queue-group choice come from
 * the injected ports, so under VirtualTime and a seed every run is the same. Faults hook in per
 * client: `partition(name)` cuts a client off (its publishes vanish, nothing reaches it, its requests
 * time out), `down` stops the whole server.
 */
export class SimNats {
  readonly #subs = new Set<SimSub>();
  readonly #buckets = new Map<string, SimBucket>();
  readonly #cut = new Set<string>();
  #inbox = 0;
  down = false;
  /** Messages delivered, for the simulator's events-per-second figure. */
  delivered = 0;

  constructor(
    readonly ports: { clock: Clock; timers: Timers; random: Random },
    readonly options: { latencyMs?: number } = {},
  ) {}

  connect(name: string): Bus {
    return new SimBus(this, name);
  }

  partition(name: string, cut = true): void {
    if (cut) this.#cut.add(name);
    else this.#cut.delete(name);
  }

  reachable(name: string): boolean {
    return !this.down && !this.#cut.has(name);
  }

  subscribe(sub: SimSub): void {
    this.#subs.add(sub);
  }

  unsubscribe(sub: SimSub): void {
    this.#subs.delete(sub);
  }

  inbox(): string {
    return `_INBOX.${(this.#inbox++).toString(36)}`;
  }

  /** Routes a message; returns how many subscriptions it went to (0: no responders). */
  publish(from: string, subject: string, data: Uint8Array, reply?: string): number {
    if (!this.reachable(from)) return 0;
    const plain: SimSub[] = [];
    const groups = new Map<string, SimSub[]>();
    for (const s of this.#subs) {
      if (!matches(s.subject, subject) || !this.reachable(s.client)) continue;
      if (s.queue === undefined) plain.push(s);
      else groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    }
    const targets = [...plain, ...[...groups.values()].map((g) => g[this.ports.random.int(g.length)]!)];
    for (const t of targets) {
      const msg: Msg = { subject, data, respond: (d) => (reply === undefined ? false : this.publish(t.client, reply, d) >= 0) };
      this.ports.timers.setTimeout(() => {
        this.delivered++;
        t.push(msg);
      }, this.options.latencyMs ?? 0);
    }
    return targets.length;
  }

  bucket(name: string, ttlMs: number | undefined): SimBucket {
    let b = this.#buckets.get(name);
    if (b === undefined) {
      b = new SimBucket(this.ports.clock, ttlMs);
      this.#buckets.set(name, b);
    }
    return b;
  }
}

/** NATS subject matching: `*` one token, `>` the rest. */
export function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** A single-consumer queue that is an AsyncIterable, ending when closed. */
class Queue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  push(x: T): void {
    if (this.#closed) return;
    this.#items.push(x);
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift()!;
      if (this.#closed) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}

class SimSub extends Queue<Msg> implements Subscription {
  constructor(
    private readonly server: SimNats,
    readonly client: string,
    readonly subject: string,
    readonly queue: string | undefined,
  ) {
    super();
    server.subscribe(this);
  }

  unsubscribe(): void {
    this.server.unsubscribe(this);
    this.close();
  }
}

class SimBus implements Bus {
  #closed = false;
  constructor(
    private readonly server: SimNats,
    readonly name: string,
  ) {}

  publish(subject: string, data: Uint8Array): void {
    if (!this.#closed) this.server.publish(this.name, subject, data);
  }

  subscribe(subject: string, options: { queue?: string } = {}): Subscription {
    return new SimSub(this.server, this.name, subject, options.queue);
  }

  request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Msg> {
    const inbox = this.server.inbox();
    const sub = new SimSub(this.server, this.name, inbox, undefined);
    return new Promise<Msg>((resolve, reject) => {
      const timer = this.server.ports.timers.setTimeout(() => {
        sub.unsubscribe();
        reject(new NatsPortError('timeout', `request on ${subject} timed out after ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      if (this.server.publish(this.name, subject, data, inbox) === 0 && this.server.reachable(this.name)) {
        timer.cancel();
        sub.unsubscribe();
        reject(new NatsPortError('no-responders', `no responders on ${subject}`));
        return;
      }
      void (async () => {
        for await (const m of sub) {
          timer.cancel();
          sub.unsubscribe();
          resolve(m);
          return;
        }
      })();
    });
  }

  async kv(bucket: string, options: { ttlMs?: number } = {}): Promise<Kv> {
    return new SimKv(this.server, this.name, this.server.bucket(bucket, options.ttlMs));
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

interface Slot {
  value: Uint8Array | null;
  revision: number;
  operation: KvEntry['operation'];
  writtenAtMs: number;
}

/** One KV bucket: per-bucket revisions, compare-and-set, bucket-wide TTL (expiry sends no watch event, as in NATS 2.9). */
class SimBucket {
  readonly slots = new Map<string, Slot>();
  readonly watchers = new Set<{ key: string; q: Queue<KvEntry> }>();
  revision = 0;

  constructor(
    private readonly clock: Clock,
    readonly ttlMs: number | undefined,
  ) {}

  live(key: string): Slot | undefined {
    const s = this.slots.get(key);
    if (s === undefined || s.value === null) return undefined;
    if (this.ttlMs !== undefined && this.clock.nowMs() - s.writtenAtMs >= this.ttlMs) {
      this.slots.delete(key);
      return undefined;
    }
    return s;
  }

  write(key: string, value: Uint8Array | null, operation: KvEntry['operation']): number {
    const revision = ++this.revision;
    this.slots.set(key, { value, revision, operation, writtenAtMs: this.clock.nowMs() });
    const e: KvEntry = { key, value, revision, operation };
    for (const w of this.watchers) if (matches(w.key, key)) w.q.push(e);
    return revision;
  }
}

class SimKv implements Kv {
  constructor(
    private readonly server: SimNats,
    private readonly client: string,
    private readonly b: SimBucket,
  ) {}

  #reach(): void {
    if (!this.server.reachable(this.client)) throw new NatsPortError('timeout', 'JetStream is unreachable from this client');
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    this.#reach();
    if (this.b.live(key) !== undefined) throw new NatsPortError('key-exists', `key ${key} exists`);
    return this.b.write(key, value, 'PUT');
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    this.#reach();
    return this.b.write(key, value, 'PUT');
  }

  async get(key: string): Promise<KvEntry | null> {
    this.#reach();
    const s = this.b.live(key);
    return s === undefined ? null : { key, value: s.value, revision: s.revision, operation: s.operation };
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    this.#reach();
    const s = this.b.live(key);
    if (s === undefined || s.revision !== expectedRevision) throw new NatsPortError('wrong-revision', `key ${key} is at revision ${s?.revision ?? 0}, not ${expectedRevision}`);
    return this.b.write(key, value, 'PUT');
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.#reach();
    const s = this.b.live(key);
    if (expectedRevision !== undefined && s?.revision !== expectedRevision) throw new NatsPortError('wrong-revision', `key ${key} is not at revision ${expectedRevision}`);
    this.b.write(key, null, 'DEL');
  }

  async keys(filter = '>'): Promise<string[]> {
    this.#reach();
    return [...this.b.slots.keys()].filter((k) => matches(filter, k) && this.b.live(k) !== undefined);
  }

  async watch(options: { key?: string; includeHistory?: boolean }): Promise<KvWatch> {
    this.#reach();
    const q = new Queue<KvEntry>();
    const w = { key: options.key ?? '>', q };
    if (options.includeHistory === true) {
      for (const [key, s] of this.b.slots) if (matches(w.key, key) && this.b.live(key) !== undefined) q.push({ key, value: s.value, revision: s.revision, operation: s.operation });
    }
    this.b.watchers.add(w);
    return {
      stop: () => {
        this.b.watchers.delete(w);
        q.close();
      },
      [Symbol.asyncIterator]: () => q[Symbol.asyncIterator](),
    };
  }
}
