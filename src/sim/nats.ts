import { ClosedError, DisconnectedError, NoRespondersError, SlowConsumerError, TimeoutError, type NatsPortError } from '../nats/errors.js';
import { BoundedQueue } from '../nats/queue.js';
import { checkFilter, checkName, checkPositiveInt, checkPositiveMs, checkSubject, matches } from '../nats/subject.js';
import {
  JS_TIMEOUT_MS_DEFAULT,
  SUBSCRIPTION_PENDING_MAX,
  type Bus,
  type BusStatus,
  type Headers,
  type Kv,
  type KvOptions,
  type Msg,
  type PublishOptions,
  type RequestOptions,
  type Stream,
  type StreamOptions,
  type SubscribeOptions,
  type Subscription,
} from '../nats/types.js';
import { SeededRandom } from '../ports/random.js';
import type { Clock, Random, Timers } from '../ports/types.js';
import { SimCluster, META_GROUP, type ClusterOptions, type RpcOptions } from './nats-cluster.js';
import { openKv, openStream, type SimDurable } from './nats-js.js';
import type { SimStore } from './nats-jetstream.js';
import { SimNetwork, type LinkFaults, type NetHook } from './network.js';

export { matches };
export type { LinkFaults, NetHook, NetEvent, NetVerdict } from './network.js';

export interface SimNatsOptions {
  /** One-way client-server delay, ms (a publish reaches a subscriber after two of these). Default 0. */
  latencyMs?: number;
  /** How long JetStream/KV calls wait for the server, as in the real binding. Default JS_TIMEOUT_MS_DEFAULT. */
  jsTimeoutMs?: number;
  /** Faults on every link that has none of its own (see setFaults). */
  faults?: LinkFaults;
  /** A custom per-message fault hook, consulted on every link. */
  hook?: NetHook;
  /**
   * Three (or more) servers with every stream and bucket replicated on each (src/sim/nats-cluster.ts).
   * Absent: one server, the model every existing seed's trace was recorded on.
   */
  cluster?: ClusterOptions;
}

/**
 * NATS in one process for the simulator, behind the same Bus port as the real client and held to it
 * by the contract tests (test/nats-contract.test.ts). Time, timers and every random choice (queue
 * group member, faults) come from the injected ports, so under VirtualTime a seed replays a run.
 *
 * Faults, per client name: `partition(name)` cuts a client off both ways (the server drops its
 * interest, so requests to it find no responders; its own publishes are lost; its JetStream calls
 * time out), `down = true` does that to every client (JetStream state survives, as on disk),
 * `setFaults(name, {delayMs, jitterMs, dropRate, duplicateRate, reorder})` degrades its link, and
 * `network.hook` sees every message. Where the simulator knowingly differs from the real server:
 * - a disconnect is noticed at once (real clients take up to two ping intervals); publishes made
 *   while cut off are lost (nats.js would buffer some and send them after reconnecting);
 * - a message already in flight when a partition starts is still delivered;
 * - bucket TTL expiry is exact (the server sweeps expired messages about once a second);
 * - opening a bucket or stream, and attaching a reader to a durable consumer, take no virtual time
 *   while the server is reachable; unsubscribing takes effect at once;
 * - a core request on a stream subject is stored but not acked; workqueue streams do not refuse
 *   overlapping consumers; stream/watch deliveries are never lost to drop faults (nats.js's
 *   ordered consumers re-fetch after a gap, so the loss would not be visible).
 */
/** Subjects whose capturing streams are remembered (inbox subjects are unique, so the cache is bounded). */
const CAPTURE_CACHE_MAX = 10_000;

export class SimNats {
  readonly network: SimNetwork;
  readonly jsTimeoutMs: number;
  /** The replicated model's servers and Raft groups; undefined for the single server. */
  readonly cluster: SimCluster | undefined;
  readonly streams = new Map<string, SimStore>();
  /** Called for every stream or KV bucket the server creates, before its first message. */
  onStore: ((s: SimStore) => void) | undefined;
  /** Called as a client issues a JetStream/KV call (before the network sees it): who acted, and when. */
  onRpc: ((client: string, what: string) => void) | undefined;
  /** The client whose JetStream/KV call the server is applying right now (for observers' taps). */
  writer: string | undefined;
  /** When that call was issued (a delayed call is applied long after). */
  writerSentAtMs = 0;
  readonly consumers = new Map<string, SimDurable>();
  readonly #subs = new Set<SimSub>();
  readonly #inboxes = new Map<string, { client: string; onReply(m: Msg): void; onNoResponders(): void }>();
  readonly #buses = new Map<string, Set<SimBus>>();
  /** JetStream followers (watches, readers, consumer readers) per client, kicked when it comes back. */
  readonly #resumers = new Map<string, Set<() => void>>();
  #inbox = 0;
  /** Core messages delivered to subscribers, for the simulator's figures. */
  delivered = 0;

  constructor(
    readonly ports: { clock: Clock; timers: Timers; random: Random },
    options: SimNatsOptions = {},
  ) {
    this.jsTimeoutMs = options.jsTimeoutMs ?? JS_TIMEOUT_MS_DEFAULT;
    this.network = new SimNetwork(ports, options.latencyMs ?? 0, (c, up) => this.#linkChanged(c, up), options.faults ?? {}, options.hook);
    // Only a cluster draws from a PRNG of its own (elections): the single server's runs draw as before.
    this.cluster =
      options.cluster === undefined
        ? undefined
        : new SimCluster({ clock: ports.clock, timers: ports.timers, random: new SeededRandom(ports.random.int(0x7fffffff)) }, {
            orphan: (c, o) => this.network.orphan(c, o),
            kickAll: () => {
              for (const set of [...this.#resumers.values()]) for (const k of [...set]) k();
            },
            freeze: (i, frozen) => {
              for (const st of this.streams.values()) if (frozen) st.freeze(i);
              else st.thaw(i);
            },
          }, options.cluster);
  }

  /** Whether a client's JetStream calls and deliveries can be served (linked, and its server in a majority). */
  jsServes(client: string): boolean {
    return this.network.connected(client) && (this.cluster?.serves(client) ?? true);
  }

  /** Whether a core message from one client's server reaches another client's. */
  #reaches(from: string, to: string): boolean {
    const c = this.cluster;
    return c === undefined || c.linked(c.serverOf(from), c.serverOf(to));
  }

  /** A client; in a simulated cluster attached to `o.server` (an index) if given, else round robin. */
  connect(name: string, o: { server?: number } = {}): Bus {
    const bus = new SimBus(this, name);
    this.network.register(name);
    const set = this.#buses.get(name) ?? new Set<SimBus>();
    set.add(bus);
    this.#buses.set(name, set);
    this.cluster?.attach(name, o.server);
    return bus;
  }

  partition(name: string, cut = true): void {
    this.network.partition(name, cut);
  }

  get down(): boolean {
    return this.network.down;
  }

  set down(down: boolean) {
    this.network.setDown(down);
  }

  setFaults(name: string, faults: LinkFaults | undefined): void {
    this.network.setFaults(name, faults);
  }

  reachable(name: string): boolean {
    return this.network.connected(name);
  }

  onResume(client: string, kick: () => void): () => void {
    const set = this.#resumers.get(client) ?? new Set();
    set.add(kick);
    this.#resumers.set(client, set);
    return () => set.delete(kick);
  }

  #linkChanged(client: string, up: boolean): void {
    for (const bus of this.#buses.get(client) ?? []) bus.linkChanged(up);
    if (up) for (const k of [...(this.#resumers.get(client) ?? [])]) k();
  }

  /**
   * Subscriptions indexed for routing: literal subjects by subject, wildcard ones apart; `seq` keeps
   * the order they were added in (the order the server hands out messages and picks queue members).
   */
  readonly #literal = new Map<string, Set<SimSub>>();
  readonly #wild = new Set<SimSub>();
  #subSeq = 0;

  addSub(sub: SimSub): void {
    if (this.#subs.has(sub)) return;
    this.#subs.add(sub);
    sub.seq = this.#subSeq++;
    if (sub.subject.includes('*') || sub.subject.includes('>')) return void this.#wild.add(sub);
    const set = this.#literal.get(sub.subject) ?? new Set<SimSub>();
    this.#literal.set(sub.subject, set.add(sub));
  }

  removeSub(sub: SimSub): void {
    if (!this.#subs.delete(sub)) return;
    this.#wild.delete(sub);
    const set = this.#literal.get(sub.subject);
    if (set?.delete(sub) === true && set.size === 0) this.#literal.delete(sub.subject);
  }

  /** Subscriptions whose filter matches `subject`, in the order they were added. */
  #interested(subject: string): SimSub[] {
    const out: SimSub[] = [];
    const literal = this.#literal.get(subject);
    if (literal !== undefined) for (const s of literal) out.push(s);
    const n = out.length;
    for (const s of this.#wild) if (matches(s.subject, subject)) out.push(s);
    if (n > 0 && out.length > n) out.sort((a, b) => a.seq - b.seq);
    return out;
  }

  newInbox(client: string, handlers: { onReply(m: Msg): void; onNoResponders(): void }): string {
    const inbox = `_INBOX.${(this.#inbox++).toString(36)}`;
    this.#inboxes.set(inbox, { client, ...handlers });
    return inbox;
  }

  dropInbox(inbox: string): void {
    this.#inboxes.delete(inbox);
  }

  /**
   * The server routing a message that arrived from `from`: stored by any stream that captures the
   * subject (`capture`), handed to every interested plain subscription and to one member per queue
   * group. Returns how many took it (0: no responders).
   */
  /** Streams capturing a subject, cached until the set of streams changes (checked on every route). */
  readonly #captureCache = new Map<string, SimStore[]>();
  #captureStreams = -1;
  #capturing(subject: string): SimStore[] {
    if (this.#captureStreams !== this.streams.size || this.#captureCache.size > CAPTURE_CACHE_MAX) {
      this.#captureCache.clear();
      this.#captureStreams = this.streams.size;
    }
    let hit = this.#captureCache.get(subject);
    if (hit === undefined) {
      hit = [...this.streams.values()].filter((s) => s.captures(subject));
      this.#captureCache.set(subject, hit);
    }
    return hit;
  }

  /** A core publish is stored by a stream only where its leader can commit it. */
  #stores(from: string, s: SimStore): boolean {
    const c = this.cluster;
    return c === undefined || (c.serves(from) && c.leaderOf(s.name) !== undefined);
  }

  route(from: string, subject: string, data: Uint8Array, headers: Headers | undefined, reply: string | undefined, capture = true): number {
    if (capture) for (const s of this.#capturing(subject)) if (this.#stores(from, s)) s.append(subject, data, headers);
    let count = 0;
    const inbox = this.#inboxes.get(subject);
    if (inbox !== undefined && this.#reaches(from, inbox.client)) {
      const m: Msg = { subject, data, ...(headers === undefined ? {} : { headers }), respond: () => false };
      this.network.send(inbox.client, 'down', 'core', subject, () => this.#inboxes.get(subject)?.onReply(m));
      count++;
    }
    const plain: SimSub[] = [];
    const groups = new Map<string, SimSub[]>();
    for (const s of this.#interested(subject)) {
      if (!s.registered || !this.network.connected(s.client) || !this.#reaches(from, s.client)) continue;
      if (s.queue === undefined) plain.push(s);
      else {
        const g = groups.get(s.queue);
        if (g === undefined) groups.set(s.queue, [s]);
        else g.push(s);
      }
    }
    const targets = [...plain, ...[...groups.values()].map((g) => g[this.ports.random.int(g.length)]!)];
    for (const t of targets) {
      const msg: Msg = {
        subject,
        data,
        ...(headers === undefined ? {} : { headers }),
        respond: (d, o) => (reply === undefined ? false : t.bus.sendRaw(reply, d, o?.headers)),
      };
      this.network.send(t.client, 'down', 'core', subject, () => {
        if (t.push(msg)) this.delivered++;
      });
    }
    return count + targets.length;
  }
}

export class SimSub implements Subscription {
  /** Interest reaches the server one hop after subscribe (and again after a reconnect). */
  registered = false;
  /** Order of addition at the server (set by it). */
  seq = 0;
  readonly q: BoundedQueue<Msg>;

  constructor(
    readonly bus: SimBus,
    readonly subject: string,
    readonly queue: string | undefined,
    pendingMax: number,
    overflow: 'drop' | 'error',
    onEnd: () => void,
  ) {
    this.q = new BoundedQueue<Msg>(pendingMax, overflow, () => new SlowConsumerError(subject, pendingMax), {
      onOverflow: (dropped, first) => first && bus.emit({ type: 'slow-consumer', subject, dropped }),
      onEnd,
    });
  }

  get client(): string {
    return this.bus.name;
  }

  push(m: Msg): boolean {
    return this.q.push(m);
  }

  get pending(): number {
    return this.q.pending;
  }

  get dropped(): number {
    return this.q.dropped;
  }

  get closed(): Promise<NatsPortError | null> {
    return this.q.closed;
  }

  unsubscribe(): void {
    this.q.end(null, { discard: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return this.q[Symbol.asyncIterator]();
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(f: () => T): Settled<T> {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** How a JetStream call travels in a simulated cluster (ignored by the single server). */

/** One client connection. */
export class SimBus implements Bus {
  readonly #listeners = new Set<(s: BusStatus) => void>();
  readonly #subs = new Set<SimSub>();
  /** Watches, stream readers and consumers: ended with the bus. */
  readonly #iters = new Set<(discard: boolean) => void>();
  /** Calls waiting for the server; rejected with ClosedError on close. */
  readonly #waiting = new Set<(e: NatsPortError) => void>();
  /** Flushes in flight, failed if the link goes down under them (their pong is lost). */
  readonly #flushes = new Set<(e: NatsPortError) => void>();
  #closing = false;
  #resolveClosed!: (e: NatsPortError | null) => void;
  readonly closed: Promise<NatsPortError | null> = new Promise((r) => (this.#resolveClosed = r));

  constructor(
    readonly server: SimNats,
    readonly name: string,
  ) {}

  get net(): SimNetwork {
    return this.server.network;
  }

  emit(s: BusStatus): void {
    for (const l of [...this.#listeners]) this.server.ports.timers.defer(() => l(s));
  }

  linkChanged(up: boolean): void {
    if (this.#closing) return;
    this.emit({ type: up ? 'reconnect' : 'disconnect' });
    if (!up) {
      for (const f of [...this.#flushes]) f(new DisconnectedError());
      return;
    }
    // A reconnecting client sends its subscriptions again.
    for (const s of this.#subs) this.net.send(this.name, 'up', 'control', s.subject, () => (s.registered = true));
  }

  #live(): void {
    if (this.#closing) throw new ClosedError();
  }

  /** Keeps something that must end with the bus; returns its release. */
  track(end: (discard: boolean) => void): () => void {
    this.#iters.add(end);
    return () => this.#iters.delete(end);
  }

  /** A publish from this client, as the wire sees it; false once closed. */
  sendRaw(subject: string, data: Uint8Array, headers: Headers | undefined): boolean {
    if (this.#closing) return false;
    this.net.send(this.name, 'up', 'core', subject, () => this.server.route(this.name, subject, data, headers, undefined));
    return true;
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    checkSubject(subject);
    this.#live();
    this.sendRaw(subject, data, options.headers);
  }

  subscribe(subject: string, options: SubscribeOptions = {}): Subscription {
    checkFilter(subject);
    if (options.queue !== undefined) checkName(options.queue, 'queue group');
    const pendingMax = options.pendingMax ?? SUBSCRIPTION_PENDING_MAX;
    checkPositiveInt(pendingMax, 'pendingMax');
    this.#live();
    const sub: SimSub = new SimSub(this, subject, options.queue, pendingMax, options.overflow ?? 'drop', () => {
      this.server.removeSub(sub);
      this.#subs.delete(sub);
    });
    this.#subs.add(sub);
    this.server.addSub(sub);
    this.net.send(this.name, 'up', 'control', subject, () => (sub.registered = true));
    return sub;
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Msg> {
    checkSubject(subject);
    checkPositiveMs(options.timeoutMs, 'timeoutMs');
    this.#live();
    return new Promise<Msg>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        timer.cancel();
        this.server.dropInbox(inbox);
        this.#waiting.delete(onClose);
        settle();
      };
      const onClose = (e: NatsPortError): void => finish(() => reject(e));
      const timer = this.server.ports.timers.setTimeout(() => finish(() => reject(new TimeoutError(`request on ${subject}`, options.timeoutMs))), options.timeoutMs);
      const inbox = this.server.newInbox(this.name, {
        onReply: (m) => finish(() => resolve(m)),
        onNoResponders: () => finish(() => reject(new NoRespondersError(subject))),
      });
      this.#waiting.add(onClose);
      this.net.send(this.name, 'up', 'core', subject, () => {
        if (this.server.route(this.name, subject, data, options.headers, inbox) === 0) {
          this.net.send(this.name, 'down', 'core', inbox, () => finish(() => reject(new NoRespondersError(subject))));
        }
      });
    });
  }

  async flush(): Promise<void> {
    this.#live();
    if (!this.net.connected(this.name)) throw new DisconnectedError();
    return new Promise<void>((resolve, reject) => {
      const fail = (e: NatsPortError): void => {
        this.#flushes.delete(fail);
        this.#waiting.delete(fail);
        reject(e);
      };
      this.#flushes.add(fail);
      this.#waiting.add(fail);
      this.net.send(this.name, 'up', 'control', undefined, () =>
        this.net.send(this.name, 'down', 'control', undefined, () => {
          if (!this.#flushes.delete(fail)) return;
          this.#waiting.delete(fail);
          resolve();
        }),
      );
    });
  }

  /**
   * A JetStream API call: the request travels to the server, `apply` runs there, the answer travels
   * back. A lost request or answer makes the caller time out — possibly after the change was applied,
   * exactly the ambiguity a real client faces.
   */
  rpc<T>(what: string, apply: () => T, options: RpcOptions<T> = {}): Promise<T> {
    if (this.#closing) return Promise.reject(new ClosedError());
    this.server.onRpc?.(this.name, what);
    // Opening a bucket or stream takes no virtual time when the server is reachable, so a world can
    // be set up before its clock runs (src/sim/world.ts awaits startNode before advancing time).
    if (options.immediate === true && this.server.jsServes(this.name) && (this.server.cluster === undefined || this.server.cluster.leaderOf(META_GROUP) !== undefined)) {
      try {
        return Promise.resolve(apply());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const timeoutMs = this.server.jsTimeoutMs;
    const sentAtMs = this.server.ports.clock.nowMs();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        timer.cancel();
        this.#waiting.delete(onClose);
        settle();
      };
      const onClose = (e: NatsPortError): void => finish(() => reject(e));
      const timer = this.server.ports.timers.setTimeout(() => finish(() => reject(new TimeoutError(what, timeoutMs))), timeoutMs);
      this.#waiting.add(onClose);
      const answer = (result: Settled<T>): void => this.net.send(this.name, 'down', 'js-api', undefined, () => finish(() => (result.ok ? resolve(result.value) : reject(result.error))));
      this.net.send(this.name, 'up', 'js-api', undefined, () => {
        const execute = (): Settled<T> => this.#apply(apply, sentAtMs);
        const cluster = this.server.cluster;
        if (cluster === undefined) return answer(execute());
        const stale = options.stale;
        cluster.serve(this.name, options.group ?? META_GROUP, options.access ?? 'write', execute, answer, () => answer({ ok: false, error: new NoRespondersError(what) }), stale === undefined ? undefined : (i) => settle(() => stale(i)));
      });
    });
  }

  /** Applies a call at the server, naming its writer for the observers' taps. */
  #apply<T>(apply: () => T, sentAtMs: number): Settled<T> {
    try {
      this.server.writer = this.name;
      this.server.writerSentAtMs = sentAtMs;
      return settle(apply);
    } finally {
      this.server.writer = undefined;
    }
  }

  kv(bucket: string, options: KvOptions = {}): Promise<Kv> {
    return openKv(this, bucket, options);
  }

  stream(name: string, options: StreamOptions): Promise<Stream> {
    return openStream(this, name, options);
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async drain(): Promise<void> {
    if (this.#closing) return;
    for (const end of [...this.#iters]) end(false);
    for (const s of [...this.#subs]) s.q.end(null); // readers still get what already arrived
    if (this.net.connected(this.name)) await this.flush().catch(() => {});
    this.#shut(false);
  }

  async close(): Promise<void> {
    this.#shut(true);
  }

  #shut(discard: boolean): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const end of [...this.#iters]) end(discard);
    for (const s of [...this.#subs]) s.q.end(null, { discard });
    for (const w of [...this.#waiting]) w(new ClosedError());
    this.emit({ type: 'closed' });
    this.#resolveClosed(null);
  }
}
