import { InvalidArgumentError, KeyExistsError, NotFoundError, SlowConsumerError, WrongRevisionError, type NatsPortError } from '../nats/errors.js';
import { BoundedQueue } from '../nats/queue.js';
import { checkConsumerOptions, checkKvOptions, checkStreamOptions, CONSUMER_DEFAULTS } from '../nats/stream-options.js';
import { checkFilter, checkKey, checkKeyFilter, checkName, checkPositiveInt, checkRevision, checkSubject } from '../nats/subject.js';
import {
  DUPLICATE_WINDOW_MS_DEFAULT,
  STREAM_PULL_MAX,
  WATCH_PENDING_MAX,
  type ConsumerMsg,
  type ConsumerOptions,
  type DurableConsumer,
  type Kv,
  type KvChange,
  type KvEntry,
  type KvOptions,
  type KvWatch,
  type KvWatchOptions,
  type PubAck,
  type ReadOptions,
  type Stream,
  type StreamInfo,
  type StreamIter,
  type StreamMsg,
  type StreamOptions,
  type StreamPublishOptions,
} from '../nats/types.js';
import type { Clock, Random, TimerHandle, Timers } from '../ports/types.js';
import type { Headers as NatsHeaders } from '../nats/types.js';
import { overlaps, SimStore, WrongLastSeq, type Stored } from './nats-jetstream.js';
import type { SimNetwork } from './network.js';
import type { Access, RpcOptions } from './nats-cluster.js';

/** The simulated server as the JetStream side uses it (SimNats, src/sim/nats.ts). */
export interface JsServer {
  readonly streams: Map<string, SimStore>;
  readonly consumers: Map<string, SimDurable>;
  onStore: ((s: SimStore) => void) | undefined;
  readonly ports: { clock: Clock; timers: Timers; random: Random };
  onResume(client: string, kick: () => void): () => void;
  /** Whether a client's JetStream calls and deliveries can be served now. */
  jsServes(client: string): boolean;
  route(from: string, subject: string, data: Uint8Array, headers: NatsHeaders | undefined, reply: string | undefined, capture?: boolean): number;
}

/** A simulated client as the JetStream side uses it (SimBus, src/sim/nats.ts, which imports this module). */
export interface SimBus {
  readonly name: string;
  readonly net: SimNetwork;
  readonly server: JsServer;
  rpc<T>(what: string, apply: () => T, options?: RpcOptions<T>): Promise<T>;
  track(end: (discard: boolean) => void): () => void;
}

/** The simulated JetStream as a client sees it: KV buckets and streams over SimStore, via SimBus.rpc. */

const KV_OP = 'KV-Operation';
type KvOp = 'PUT' | 'DEL' | 'PURGE';
const opOf = (m: Stored): KvOp => (m.headers?.[KV_OP] as KvOp | undefined) ?? 'PUT';

export async function openKv(bus: SimBus, bucket: string, o: KvOptions): Promise<Kv> {
  checkKvOptions(bucket, o);
  const name = `KV_${bucket}`;
  const store = await bus.rpc(`opening KV bucket ${bucket}`, () => {
    let s = bus.server.streams.get(name);
    if (s === undefined) {
      s = new SimStore(name, { subjects: [`$KV.${bucket}.>`], retention: 'limits', duplicateWindowMs: Math.min(o.ttlMs ?? DUPLICATE_WINDOW_MS_DEFAULT, DUPLICATE_WINDOW_MS_DEFAULT), maxAgeMs: o.ttlMs, msgsMax: undefined, perSubjectMax: o.history ?? 1 }, bus.server.ports.clock);
      bus.server.streams.set(name, s);
      bus.server.onStore?.(s);
    }
    return s;
  }, { immediate: true });
  return new SimKv(bus, bucket, store);
}

class SimKv implements Kv {
  readonly #prefix: string;
  constructor(
    private readonly bus: SimBus,
    readonly bucket: string,
    private readonly store: SimStore,
  ) {
    this.#prefix = `$KV.${bucket}.`;
  }

  #call<T>(op: string, key: string, apply: () => T, access: Access = 'write', stale?: (server: number) => T): Promise<T> {
    return this.bus.rpc(`KV ${op} ${this.bucket}/${key}`, apply, { group: this.store.name, access, ...(stale === undefined ? {} : { stale }) });
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.#call('create', key, () => {
      const last = this.store.last(this.#prefix + key);
      if (last !== undefined && opOf(last) === 'PUT') throw new KeyExistsError(this.bucket, key);
      return this.store.append(this.#prefix + key, value, undefined, { expectedLastSubjectSeq: last?.seq ?? 0 }).seq;
    });
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.#call('put', key, () => this.store.append(this.#prefix + key, value, undefined).seq);
  }

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    const entry = (m: Stored | undefined): KvEntry | null => (m === undefined || opOf(m) !== 'PUT' ? null : { key, value: m.data, revision: m.seq });
    // A direct get: any replica answers, a cut off one from what it had when it was cut.
    return this.#call('get', key, () => entry(this.store.last(this.#prefix + key)), 'direct', (server) => entry(this.store.lastSeenBy(server, this.#prefix + key)));
  }

  /** As on the server, the check is on the key's last sequence, a DEL marker's included. */
  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    checkKey(key);
    checkRevision(expectedRevision);
    return this.#call('update', key, () => this.#cas(key, expectedRevision, () => this.store.append(this.#prefix + key, value, undefined, { expectedLastSubjectSeq: expectedRevision }).seq));
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    checkKey(key);
    if (expectedRevision !== undefined) checkRevision(expectedRevision);
    const o = expectedRevision === undefined ? {} : { expectedLastSubjectSeq: expectedRevision };
    await this.#call('delete', key, () => this.#cas(key, expectedRevision ?? 0, () => this.store.append(this.#prefix + key, new Uint8Array(0), { [KV_OP]: 'DEL' }, o)));
  }

  async purge(key: string): Promise<void> {
    checkKey(key);
    await this.#call('purge', key, () => this.store.append(this.#prefix + key, new Uint8Array(0), { [KV_OP]: 'PURGE' }, { rollup: true }));
  }

  #cas<T>(key: string, expectedRevision: number, write: () => T): T {
    try {
      return write();
    } catch (e) {
      throw e instanceof WrongLastSeq ? new WrongRevisionError(this.bucket, key, expectedRevision) : e;
    }
  }

  async keys(filter = '>'): Promise<string[]> {
    checkKeyFilter(filter);
    return this.#call('keys', filter, () =>
      this.store
        .lastPerSubject(this.#prefix + filter)
        .filter((m) => opOf(m) === 'PUT')
        .map((m) => m.subject.slice(this.#prefix.length)),
      'read',
    );
  }

  async watch(options: KvWatchOptions = {}): Promise<KvWatch> {
    const key = options.key ?? '>';
    checkKeyFilter(key);
    const include = options.include ?? (options.includeHistory === true ? 'history' : 'updates');
    const pendingMax = options.pendingMax ?? WATCH_PENDING_MAX;
    checkPositiveInt(pendingMax, 'pendingMax');
    const filter = this.#prefix + key;
    const toChange = (m: Stored, caughtUp: boolean): KvChange => {
      const op = opOf(m);
      return { key: m.subject.slice(this.#prefix.length), value: op === 'PUT' ? m.data : null, revision: m.seq, operation: op, caughtUp };
    };
    // A watch is pushed (no pull credit), like nats.js's; overflow ends it with SlowConsumerError.
    const reader = new SimReader(this.bus, this.store, filter, Infinity, pendingMax, 'error', `KV ${this.bucket} watch ${key}`, toChange);
    await this.#call('watch', key, () => {
      const latest = this.store.lastPerSubject(filter);
      const lastMatching = latest.at(-1)?.seq ?? 0;
      if (include === 'latest') reader.start(this.store.lastSeq, latest, lastMatching);
      else if (include === 'history') reader.start(0, [], lastMatching);
      else reader.start(this.store.lastSeq, [], 0);
    }, 'read').catch((e: unknown) => {
      reader.q.end(null, { discard: true });
      throw e;
    });
    return reader.iter();
  }
}

/**
 * Follows a store by sequence and sends what it finds to one client, `credit` messages ahead
 * (Infinity: pushed). Used for KV watches and ordered stream reads.
 */
class SimReader<T> {
  readonly q: BoundedQueue<T>;
  #cursor = 0;
  #initial: Stored[] = [];
  #caughtUpFromSeq = 0;
  #release: (() => void)[] = [];

  constructor(
    private readonly bus: SimBus,
    private readonly store: SimStore,
    private readonly filter: string,
    private credit: number,
    pendingMax: number,
    overflow: 'drop' | 'error',
    what: string,
    private readonly toItem: (m: Stored, caughtUp: boolean) => T,
  ) {
    this.q = new BoundedQueue<T>(pendingMax, overflow, () => new SlowConsumerError(what, pendingMax), {
      onTake: () => {
        if (this.credit !== Infinity) bus.net.send(bus.name, 'up', 'control', undefined, () => this.#give());
      },
      onEnd: () => {
        for (const r of this.#release) r();
        this.#release = [];
      },
    });
    this.#release.push(bus.track((discard) => this.q.end(null, { discard })));
  }

  /** Runs on the server: where to start, what to send first, and from which sequence the reader is caught up. */
  start(cursor: number, initial: Stored[], caughtUpFromSeq: number): void {
    if (this.q.ended) return;
    this.#cursor = cursor;
    this.#initial = initial;
    this.#caughtUpFromSeq = caughtUpFromSeq;
    const kick = (): void => this.#kick();
    this.#release.push(this.store.follow(this.filter, kick), this.bus.server.onResume(this.bus.name, kick));
    kick();
  }

  #give(): void {
    this.credit++;
    this.#kick();
  }

  #kick(): void {
    const net = this.bus.net;
    while (!this.q.ended && this.credit > 0 && this.bus.server.jsServes(this.bus.name)) {
      let m: Stored | undefined;
      while (m === undefined && this.#initial.length > 0) m = this.store.get(this.#initial.shift()!.seq);
      if (m === undefined) {
        const n = this.store.next(this.#cursor, this.filter);
        this.#cursor = n.scannedTo;
        m = n.msg;
      }
      if (m === undefined) return;
      this.credit--;
      const item = this.toItem(m, m.seq >= this.#caughtUpFromSeq);
      net.send(this.bus.name, 'down', 'js-delivery', m.subject, () => void this.q.push(item));
    }
  }

  iter(): StreamIter<T> & KvWatch {
    const q = this.q;
    return { stop: () => q.end(null, { discard: true }), closed: q.closed, [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() } as StreamIter<T> & KvWatch;
  }
}

export async function openStream(bus: SimBus, name: string, o: StreamOptions): Promise<Stream> {
  checkName(name, 'stream name');
  checkStreamOptions(o);
  const streams = bus.server.streams;
  const store = await bus.rpc(`opening stream ${name}`, () => {
    const existing = streams.get(name);
    if (existing !== undefined) return existing;
    for (const s of streams.values()) {
      const clash = o.subjects.find((a) => s.config.subjects.some((b) => overlaps(a, b)));
      if (clash !== undefined) throw new InvalidArgumentError(`creating stream ${name}: subject "${clash}" overlaps stream ${s.name}; give each stream its own subjects`);
    }
    const created = new SimStore(
      name,
      { subjects: [...o.subjects], retention: o.retention ?? 'limits', duplicateWindowMs: o.duplicateWindowMs ?? DUPLICATE_WINDOW_MS_DEFAULT, maxAgeMs: o.maxAgeMs, msgsMax: o.msgsMax, perSubjectMax: undefined },
      bus.server.ports.clock,
    );
    streams.set(name, created);
    return created;
  }, { immediate: true });
  return new SimStream(bus, store);
}

class SimStream implements Stream {
  constructor(
    private readonly bus: SimBus,
    private readonly store: SimStore,
  ) {}

  get name(): string {
    return this.store.name;
  }

  async publish(subject: string, data: Uint8Array, options: StreamPublishOptions = {}): Promise<PubAck> {
    checkSubject(subject);
    if (!this.store.captures(subject)) throw new InvalidArgumentError(`stream ${this.name} does not store "${subject}" (its subjects: ${this.store.config.subjects.join(', ')})`);
    if (options.msgId !== undefined && options.msgId.length === 0) throw new InvalidArgumentError('msgId must not be empty');
    return this.bus.rpc(`stream publish on ${subject}`, () => {
      if (this.bus.server.streams.get(this.name) !== this.store) throw new NotFoundError(`no stream stores "${subject}" any more`);
      const r = this.store.append(subject, data, options.headers, options.msgId === undefined ? {} : { msgId: options.msgId });
      // A stored message is also an ordinary message on its subject.
      if (!r.duplicate) this.bus.server.route(this.bus.name, subject, data, options.headers, undefined, false);
      return { stream: this.name, seq: r.seq, duplicate: r.duplicate };
    }, { group: this.name });
  }

  async info(): Promise<StreamInfo> {
    return this.bus.rpc(`stream info ${this.name}`, () => this.store.info(), { group: this.name, access: 'read' });
  }

  read(options: ReadOptions = {}): StreamIter<StreamMsg> {
    const fromSeq = options.fromSeq ?? 1;
    checkPositiveInt(fromSeq, 'fromSeq');
    if (options.filter !== undefined) checkFilter(options.filter, 'stream filter');
    const pullMax = options.pullMax ?? STREAM_PULL_MAX;
    checkPositiveInt(pullMax, 'pullMax');
    const reader = new SimReader(this.bus, this.store, options.filter ?? '>', pullMax, pullMax, 'error', `stream ${this.name} read`, (m) => streamMsg(m));
    this.bus.rpc(`stream read ${this.name}`, () => reader.start(fromSeq - 1, [], 0), { group: this.name, access: 'read' }).catch((e: unknown) => reader.q.end(e as NatsPortError));
    return reader.iter();
  }

  async consumer(name: string, options: ConsumerOptions = {}): Promise<DurableConsumer> {
    checkName(name, 'consumer name');
    checkConsumerOptions(options);
    const server = this.bus.server;
    const key = `${this.name}/${name}`;
    const durable = await this.bus.rpc(`consumer ${key}`, () => {
      let d = server.consumers.get(key);
      if (d === undefined) {
        d = new SimDurable(this.bus, this.store, { ...CONSUMER_DEFAULTS, ...options });
        server.consumers.set(key, d);
      }
      return d;
    }, { group: this.name });
    return {
      stream: this.name,
      name,
      consume: (c = {}) => {
        const pullMax = c.pullMax ?? STREAM_PULL_MAX;
        checkPositiveInt(pullMax, 'pullMax');
        return durable.attach(this.bus, pullMax, `consumer ${key}`);
      },
    };
  }
}

function streamMsg(m: Stored): StreamMsg {
  return { subject: m.subject, data: m.data, seq: m.seq, ...(m.headers === undefined ? {} : { headers: m.headers }) };
}

interface Attached {
  bus: SimBus;
  credit: number;
  q: BoundedQueue<ConsumerMsg>;
}

/**
 * A durable consumer's server-side state: a cursor for first deliveries, messages out awaiting an
 * ack (each with its ack-wait timer), and messages due again. Readers take turns (round robin).
 */
export class SimDurable {
  #cursor: number;
  readonly #deliveries = new Map<number, number>();
  readonly #ackPending = new Map<number, TimerHandle>();
  #due: number[] = [];
  #readers: Attached[] = [];
  #turn = 0;
  readonly #o: Required<Omit<ConsumerOptions, 'filter'>> & { filter: string };

  constructor(
    private readonly bus: SimBus,
    private readonly store: SimStore,
    o: Required<Omit<ConsumerOptions, 'filter'>> & { filter?: string },
  ) {
    this.#o = { ...o, filter: o.filter ?? '>' };
    this.#cursor = o.fromSeq - 1;
    store.follow(this.#o.filter, () => this.kick());
  }

  attach(bus: SimBus, pullMax: number, what: string): StreamIter<ConsumerMsg> {
    const r: Attached = { bus, credit: pullMax, q: undefined as never };
    const release: (() => void)[] = [];
    r.q = new BoundedQueue<ConsumerMsg>(pullMax, 'error', () => new SlowConsumerError(what, pullMax), {
      onTake: () =>
        bus.net.send(bus.name, 'up', 'control', undefined, () => {
          r.credit++;
          this.kick();
        }),
      onEnd: () => {
        this.#readers = this.#readers.filter((x) => x !== r);
        for (const f of release) f();
      },
    });
    release.push(bus.track((discard) => r.q.end(null, { discard })), bus.server.onResume(bus.name, () => this.kick()));
    this.#readers.push(r);
    this.kick();
    const q = r.q;
    return { stop: () => q.end(null, { discard: true }), closed: q.closed, [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
  }

  #nextReader(): Attached | undefined {
    const n = this.#readers.length;
    for (let i = 0; i < n; i++) {
      const r = this.#readers[(this.#turn + i) % n]!;
      if (r.credit > 0 && !r.q.ended && this.bus.server.jsServes(r.bus.name)) {
        this.#turn = (this.#turn + i + 1) % n;
        return r;
      }
    }
    return undefined;
  }

  kick(): void {
    for (;;) {
      const r = this.#nextReader();
      if (r === undefined) return;
      let m: Stored | undefined;
      while (m === undefined && this.#due.length > 0) {
        const seq = this.#due.shift()!;
        m = this.store.get(seq);
        if (m === undefined) this.#deliveries.delete(seq);
      }
      if (m === undefined) {
        if (this.#ackPending.size >= this.#o.ackPendingMax) return;
        const n = this.store.next(this.#cursor, this.#o.filter);
        this.#cursor = n.scannedTo;
        m = n.msg;
      }
      if (m === undefined) return;
      this.#send(r, m);
    }
  }

  #send(r: Attached, m: Stored): void {
    const count = (this.#deliveries.get(m.seq) ?? 0) + 1;
    this.#deliveries.set(m.seq, count);
    r.credit--;
    this.#ackPending.set(m.seq, this.bus.server.ports.timers.setTimeout(() => this.#expired(m.seq), this.#o.ackWaitMs));
    const seq = m.seq;
    const reply = (f: () => void) => () => r.bus.net.send(r.bus.name, 'up', 'js-api', undefined, f);
    const msg: ConsumerMsg = {
      ...streamMsg(m),
      deliveryCount: count,
      ack: reply(() => this.#settle(seq)),
      nak: (delayMs = 0) => reply(() => this.#nak(seq, delayMs))(),
      term: reply(() => this.#settle(seq)),
    };
    r.bus.net.send(r.bus.name, 'down', 'js-delivery', m.subject, () => void r.q.push(msg));
  }

  #expired(seq: number): void {
    this.#ackPending.delete(seq);
    this.#again(seq);
  }

  #again(seq: number): void {
    if (this.#o.deliverMax !== -1 && (this.#deliveries.get(seq) ?? 0) >= this.#o.deliverMax) {
      this.#deliveries.delete(seq);
      return;
    }
    if (!this.#due.includes(seq)) this.#due = [...this.#due, seq].sort((a, b) => a - b);
    this.kick();
  }

  /** An ack (or term): done with the message; a work queue forgets it. */
  #settle(seq: number): void {
    this.#ackPending.get(seq)?.cancel();
    this.#ackPending.delete(seq);
    this.#due = this.#due.filter((s) => s !== seq);
    this.#deliveries.delete(seq);
    if (this.store.config.retention === 'workqueue') this.store.remove(seq);
    this.kick();
  }

  #nak(seq: number, delayMs: number): void {
    if (!this.#ackPending.has(seq)) return;
    this.#ackPending.get(seq)!.cancel();
    this.#ackPending.delete(seq);
    if (delayMs > 0) this.bus.server.ports.timers.setTimeout(() => this.#again(seq), delayMs);
    else this.#again(seq);
  }
}
