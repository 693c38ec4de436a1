import {
  connect,
  RequestError,
  type Msg as NatsMsg,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from '@nats-io/transport-node';
import { jetstream, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm, type ObjectStore as NatsObjectStore } from '@nats-io/obj';
import { ClosedError, ConnectError, InvalidArgumentError, NatsPortError, NoRespondersError, SlowConsumerError, TimeoutError } from './errors.js';
import { BoundedQueue } from './queue.js';
import { bounded, classify, type JetStreamHost, fromNatsHeaders, toNatsHeaders, type Tracked } from './real-common.js';
import { isStreamNotFound, RealKv, RealStream } from './real-jetstream.js';
import { realLeadership } from './real-leadership.js';
import { checkKvOptions } from './stream-options.js';
import { traceSpawn } from '../spawn-trace.js';
import { checkFilter, checkName, checkPositiveInt, checkPositiveMs, checkSubject } from './subject.js';
import {
  CHUNK_TOKEN,
  JS_TIMEOUT_MS_DEFAULT,
  SUBSCRIPTION_PENDING_MAX,
  type Bus,
  type BusStatus,
  type Kv,
  type KvOptions,
  type Msg,
  type ObjectLocation,
  type ObjectStore,
  type PublishOptions,
  type RequestOptions,
  type Stream,
  type StreamLeadership,
  type StreamOptions,
  type SubscribeOptions,
  type Subscription,
} from './types.js';

export { SUBSCRIPTION_PENDING_MAX };

/** An object of one chunk: its token (see ObjectLocation). */
const locationOf = (info: { chunks: number; nuid: string }): ObjectLocation => (info.chunks === 1 && CHUNK_TOKEN.test(info.nuid) ? { chunk: info.nuid } : {});

export const RECONNECT_WAIT_MS_DEFAULT = 250;
export const PING_INTERVAL_MS_DEFAULT = 10_000;
export const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;

export interface ConnectOptions {
  servers: string[];
  /** The client's name, shown in the server's monitoring. */
  name: string;
  /** How long JetStream and KV operations wait for the server. Default JS_TIMEOUT_MS_DEFAULT. */
  jsTimeoutMs?: number;
  /** Client pings; a dead server is noticed after about pingIntervalMs * 2. Default 10 000. */
  pingIntervalMs?: number;
  /** Pause between reconnect attempts (forever: a control plane outlives server restarts). Default 250. */
  reconnectWaitMs?: number;
  /** Gives up the first connect after this. Default 5 000. */
  connectTimeoutMs?: number;
  /** Subject prefix of this client's reply inboxes (a user allowed to subscribe under it only); default `_INBOX`. */
  inboxPrefix?: string;
  /**
   * Replicas of every KV bucket, stream and object store this client creates (an existing one keeps
   * its own): 3 on a NATS cluster keeps the system's state through the loss of one server. Default 1.
   */
  replicas?: number;
  /** Try the servers in the order given (the first is this machine's own) rather than shuffled. */
  ordered?: boolean;
  /** The HTTP monitoring URL of this machine's own server (`http://host:8222`): where metaGroup() asks. */
  monitorUrl?: string;
}

/** JetStream's largest replica count (a Raft group of at most five servers). */
export const REPLICAS_MAX = 5;

/**
 * Server URLs where each entry may itself be a comma-separated list (`nats://a:4222,nats://b:4222`):
 * one string is all a flag, an environment variable or a proc host is given.
 */
export function splitServers(urls: readonly string[]): string[] {
  return urls.flatMap((u) => u.split(',')).map((u) => u.trim()).filter((u) => u !== '');
}

/** Connects to real NATS servers (JetStream enabled) and returns the port over nats.js 3. */
export async function connectBus(options: ConnectOptions): Promise<Bus> {
  if (!Array.isArray(options.servers) || options.servers.length === 0) throw new InvalidArgumentError('connectBus needs at least one server URL, like "nats://127.0.0.1:4222"');
  const jsTimeoutMs = options.jsTimeoutMs ?? JS_TIMEOUT_MS_DEFAULT;
  checkPositiveMs(jsTimeoutMs, 'jsTimeoutMs');
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) throw new InvalidArgumentError(`replicas must be an integer in 1..${REPLICAS_MAX}, got ${replicas}`);
  const { servers, user, pass } = credentialsOf(splitServers(options.servers));
  if (servers.length === 0) throw new InvalidArgumentError('connectBus needs at least one server URL, like "nats://127.0.0.1:4222"');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      ...(user === undefined ? {} : { user, pass: pass ?? '' }),
      name: options.name,
      ...(options.ordered === true ? { noRandomize: true } : {}),
      ...(options.inboxPrefix === undefined ? {} : { inboxPrefix: options.inboxPrefix }),
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectWaitMs ?? RECONNECT_WAIT_MS_DEFAULT,
      pingInterval: options.pingIntervalMs ?? PING_INTERVAL_MS_DEFAULT,
      timeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT,
      // With async traces nats.js captures two stacks (a RequestError and a TimeoutError) for every
      // request and KV write: about a sixth of a node's CPU on the spawn path. Our errors name the
      // operation and subject instead.
      noAsyncTraces: true,
    });
  } catch (e) {
    throw new ConnectError(servers, { cause: e }); // without the password
  }
  // Either option says the first server given is this machine's own: the one that dies with it.
  const local = options.ordered === true || options.monitorUrl !== undefined;
  return new RealBus(nc, options.name, jsTimeoutMs, replicas, local, options.monitorUrl);
}

/**
 * Servers as URLs that may carry `user:password@` (one string is all a proc host or the CLI is given);
 * nats.js takes credentials as options only, so they are lifted out of the URLs here.
 */
function credentialsOf(urls: string[]): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = urls.map((raw) => {
    if (!raw.includes('@')) return raw;
    const u = new URL(raw.includes('://') ? raw : `nats://${raw}`);
    user ??= decodeURIComponent(u.username);
    pass ??= decodeURIComponent(u.password);
    return `${u.protocol}//${u.host}`;
  });
  return { servers, ...(user === undefined ? {} : { user }), ...(pass === undefined ? {} : { pass }) };
}

/** Maps nats.js failures onto the port's errors; unknown ones pass through unchanged. */
const KV_CREATE_ATTEMPTS = 5;
const KV_CREATE_RETRY_MS = 20;

/** The server's answer to a stream created by another client in the same instant. */
function isCreateRace(e: unknown): boolean {
  return e instanceof JetStreamApiError && /subjects overlap|already in use/.test(e.message);
}

/**
 * A cluster formed a moment ago whose meta leader does not know enough servers yet to place a
 * replicated stream (a chaos world's first bucket was refused so): tried again for a while.
 */
function isPlacementPending(e: unknown): boolean {
  return e instanceof JetStreamApiError && /no suitable peers for placement|insufficient resources/.test(e.message);
}
const PLACEMENT_RETRY_MS = 500;
const PLACEMENT_ATTEMPTS = 30;

/** How long to wait before opening a bucket again after `e`, or undefined when that would not help. */
function reopenDelayMs(e: unknown, type: string | undefined, attempt: number): number | undefined {
  if (isPlacementPending(e)) return attempt < PLACEMENT_ATTEMPTS ? PLACEMENT_RETRY_MS : undefined;
  if (attempt < KV_CREATE_ATTEMPTS && (isCreateRace(e) || type === 'no-responders' || type === 'timeout')) return KV_CREATE_RETRY_MS * attempt;
  return undefined;
}

function toMsg(m: NatsMsg): Msg {
  const headers = fromNatsHeaders(m.headers);
  return {
    subject: m.subject,
    data: m.data,
    ...(headers === undefined ? {} : { headers }),
    respond: (data, o) => {
      const h = toNatsHeaders(o?.headers);
      return m.respond(data, h === undefined ? undefined : { headers: h });
    },
  };
}


class RealBus implements Bus, JetStreamHost {
  readonly #listeners = new Set<(s: BusStatus) => void>();
  /** Everything that must end when the bus closes: subscriptions, watches, stream readers. */
  readonly #open = new Set<Tracked>();
  readonly #js: JetStreamClient;
  readonly #kvm: Kvm;
  #jsm: Promise<JetStreamManager> | undefined;
  #closing = false;
  readonly closed: Promise<NatsPortError | null>;

  constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    private readonly jsTimeoutMs: number,
    private readonly replicas: number,
    /** Whether the server this connection is on is this machine's own (StreamLeadership.server). */
    private readonly local: boolean,
    private readonly monitorUrl?: string,
  ) {
    this.#js = jetstream(nc, { timeout: jsTimeoutMs });
    this.#kvm = new Kvm(this.#js);
    this.closed = nc.closed().then((e) => {
      this.#closing = true;
      for (const o of [...this.#open]) o.end(false);
      this.#emit({ type: 'closed' });
      return e instanceof Error ? new ClosedError('the NATS connection', { cause: e }) : null;
    });
    void this.#pumpStatus();
  }

  async #pumpStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.#emit({ type: 'disconnect' });
      else if (s.type === 'reconnect') this.#emit({ type: 'reconnect' });
      else if (s.type === 'error') this.#emit({ type: 'error', error: s.error });
    }
  }

  #emit(s: BusStatus): void {
    for (const l of this.#listeners) l(s);
  }

  #live(): void {
    if (this.#closing) throw new ClosedError();
  }

  /** Registers a resource that must end with the bus; returns its deregistration. */
  track(o: Tracked): () => boolean {
    this.#open.add(o);
    return () => this.#open.delete(o);
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    checkSubject(subject);
    this.#live();
    const h = toNatsHeaders(options.headers);
    try {
      this.nc.publish(subject, data, h === undefined ? undefined : { headers: h });
    } catch (e) {
      throw classify(e, `publish on ${subject}`, 0);
    }
  }

  subscribe(subject: string, options: SubscribeOptions = {}): Subscription {
    checkFilter(subject);
    if (options.queue !== undefined) checkName(options.queue, 'queue group');
    const pendingMax = options.pendingMax ?? SUBSCRIPTION_PENDING_MAX;
    checkPositiveInt(pendingMax, 'pendingMax');
    this.#live();
    let sub: NatsSubscription | undefined;
    let untrack = (): boolean => false;
    const q = new BoundedQueue<Msg>(pendingMax, options.overflow ?? 'drop', () => new SlowConsumerError(subject, pendingMax), {
      onOverflow: (dropped, first) => first && this.#emit({ type: 'slow-consumer', subject, dropped }),
      onEnd: () => {
        untrack();
        if (sub !== undefined && !sub.isClosed()) sub.unsubscribe();
      },
    });
    sub = this.nc.subscribe(subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (err, m) => (err === null ? void q.push(toMsg(m)) : q.end(classify(err, `subscription to ${subject}`, 0) as NatsPortError)),
    });
    // A drain ends the subscription after what already arrived; the reader still gets it.
    void sub.closed.then((e) => q.end(e instanceof Error ? (classify(e, `subscription to ${subject}`, 0) as NatsPortError) : null));
    untrack = this.track({ core: true, end: (discard) => q.end(null, { discard }) });
    return {
      subject,
      get pending() {
        return q.pending;
      },
      get dropped() {
        return q.dropped;
      },
      unsubscribe: () => q.end(null, { discard: true }),
      closed: q.closed,
      [Symbol.asyncIterator]: () => q[Symbol.asyncIterator](),
    };
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Msg> {
    checkSubject(subject);
    checkPositiveMs(options.timeoutMs, 'timeoutMs');
    this.#live();
    const h = toNatsHeaders(options.headers);
    try {
      const m = await this.nc.request(subject, data, { timeout: options.timeoutMs, ...(h === undefined ? {} : { headers: h }) });
      return toMsg(m);
    } catch (e) {
      const c = classify(e, `request on ${subject}`, options.timeoutMs);
      throw c instanceof NoRespondersError ? new NoRespondersError(subject, { cause: e }) : c;
    }
  }

  async flush(): Promise<void> {
    this.#live();
    await this.nc.flush().catch((e: unknown) => Promise.reject(classify(e, 'flush', 0)));
  }

  leadership(): StreamLeadership | undefined {
    // One replica: no leader to move and no meta group to follow; looking would cost an idle cluster
    // six stream-info requests (and their advisories) every few seconds.
    if (this.replicas === 1) return undefined;
    return realLeadership({ serverName: () => (this.local ? this.nc.info?.server_name : undefined), jsm: () => this.jsm(), request: (subject, data) => this.request(subject, data, { timeoutMs: this.jsTimeoutMs }), timeoutMs: this.jsTimeoutMs, replicas: this.replicas, ...(this.monitorUrl === undefined ? {} : { monitorUrl: this.monitorUrl }) });
  }

  jsm(): Promise<JetStreamManager> {
    // Making one asks the server (account info): one that failed (no responders while the server
    // reloads its users) is not kept, or every later call would fail with it (a realm's journal removal
    // failed ten tries in a row, its bus's first JetStream call having met a reload).
    this.#jsm ??= this.#js.jetstreamManager().catch((e: unknown) => {
      this.#jsm = undefined;
      throw e;
    });
    return this.#jsm;
  }

  /**
   * Opening a bucket (create-or-bind, so safe to repeat) tried again on no responder (a server reloading
   * its users has none for a few ms) and on a timeout (a replicated stream being placed on a cluster
   * that formed a moment ago can take longer than one call's bound).
   */
  async #opening<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await bounded(call(), what, this.jsTimeoutMs);
      } catch (e) {
        const failure = classify(e, what, this.jsTimeoutMs);
        const delayMs = reopenDelayMs(e, (failure as { type?: string }).type, attempt);
        if (delayMs === undefined) throw failure;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  async objectStore(bucket: string): Promise<ObjectStore> {
    this.#live();
    const store = await this.#opening(`opening object store ${bucket}`, () => new Objm(this.nc).create(bucket, { replicas: this.replicas }));
    const op = <T>(what: string, p: Promise<T>): Promise<T> => bounded(p, what, this.jsTimeoutMs).catch((e: unknown) => Promise.reject(classify(e, what, this.jsTimeoutMs)));
    return {
      put: async (name, data) => locationOf(await op(`putting ${bucket}/${name}`, store.putBlob({ name }, data))),
      get: (name, at) => op(`getting ${bucket}/${name}`, this.#getObject(store, bucket, name, at)),
      locate: async (name) => {
        const info = await op(`locating ${bucket}/${name}`, store.info(name));
        return info === null || info.deleted ? null : locationOf(info);
      },
      delete: async (name) => void (await op(`deleting ${bucket}/${name}`, store.delete(name))),
    };
  }

  /**
   * An object in one chunk (programs are) is read with two message gets, its info and its chunk (a
   * direct get: raw bytes, no base64 JSON): nats.js's getBlob opens a consumer per read (100 KB on a
   * loaded 2-core machine: 2.3 against 6.5 ms). Larger objects take getBlob.
   */
  async #getObject(store: NatsObjectStore, bucket: string, name: string, at?: ObjectLocation): Promise<Uint8Array | null> {
    // Told where the chunk is: one round trip. A chunk that is not there (the object was stored again
    // under a new chunk, or removed) falls back to reading the info, which says which it is.
    if (at?.chunk !== undefined && CHUNK_TOKEN.test(at.chunk)) {
      const m = await (await this.jsm()).direct.getMessage(`OBJ_${bucket}`, { last_by_subj: `$O.${bucket}.C.${at.chunk}` });
      traceSpawn('store.chunk', name);
      if (m !== null) return m.data;
    }
    const info = await store.info(name);
    traceSpawn('store.info', name);
    if (info === null || info.deleted) return null;
    if (info.chunks !== 1) return store.getBlob(name);
    const m = await (await this.jsm()).direct.getMessage(`OBJ_${bucket}`, { last_by_subj: `$O.${bucket}.C.${info.nuid}` });
    return m === null ? null : m.data;
  }

  async kv(bucket: string, options: KvOptions = {}): Promise<Kv> {
    checkKvOptions(bucket, options);
    const history = options.history ?? 1;
    this.#live();
    for (let attempt = 1; ; attempt++) {
      try {
        // Replicated, reads go to the stream's leader: a direct get may be answered by a follower that
        // has not applied the last writes yet, and the control plane reads to decide (a proc record
        // read as absent right after its create ended a node's exit write there: the chaos pause
        // scenario's procs left `running`). One server has no followers; direct gets are consistent.
        const consistent = this.replicas > 1 ? { allow_direct: false } : {};
        const opening = options.bind === true ? this.#kvm.open(bucket, consistent) : this.#kvm.create(bucket, { history, replicas: this.replicas, ...consistent, ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }), ...(options.bytesMax === undefined ? {} : { max_bytes: options.bytesMax }) });
        const kv = await bounded(opening, `opening KV bucket ${bucket}`, this.jsTimeoutMs);
        return new RealKv(this, kv, bucket, this.jsTimeoutMs);
      } catch (e) {
        // Two processes creating one bucket at once: the loser's create can be refused ("subjects overlap
        // with an existing stream") though the bucket is there now; opening it again succeeds.
        // Also tried again: no responder on the JetStream API, which a server reloading its users (a
        // realm made or removed) has for a few milliseconds, and a timeout (as in #opening).
        const failure = classify(e, `opening KV bucket ${bucket}`, this.jsTimeoutMs);
        const delayMs = reopenDelayMs(e, (failure as { type?: string }).type, attempt);
        if (delayMs === undefined) throw failure;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /** Tried again as opening is (#opening): a realm's journal goes while the server reloads its users. */
  async removeKv(bucket: string): Promise<void> {
    checkKvOptions(bucket, {});
    this.#live();
    const remove = async (): Promise<void> => {
      try {
        await (await this.jsm()).streams.delete(`KV_${bucket}`);
      } catch (e) {
        if (!isStreamNotFound(e)) throw e;
      }
    };
    await this.#opening(`removing KV bucket ${bucket}`, remove);
  }

  async stream(name: string, options: StreamOptions): Promise<Stream> {
    this.#live();
    return RealStream.open(this, this.#js, name, options, this.jsTimeoutMs, this.replicas);
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async drain(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Watches and stream readers stop now; nats.js drains core subscriptions (each then hands its
    // reader what arrived before the drain, and ends).
    for (const o of [...this.#open]) if (!o.core) o.end(false);
    await this.nc.drain().catch(() => this.nc.close());
    await this.closed;
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const o of [...this.#open]) o.end(true);
    if (!this.nc.isClosed()) await this.nc.close();
    await this.closed;
  }
}

export type { RealBus };
