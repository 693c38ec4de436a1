/**
 * The NATS port: exactly the part of NATS the control plane uses, as our own types (not nats.js's).
 * Two implementations: src/nats/real.ts over nats.js 3 and a real nats-server, and src/sim/nats.ts in
 * one process on injected time for the simulator. test/nats-contract.test.ts holds both to one
 * contract. Failures are Promise rejections (or throws, for the synchronous calls) with the typed
 * errors of ./errors.ts; `e.type` discriminates them.
 */
import type { NatsPortError } from './errors.js';

/** Message headers (one value per name; NATS allows more, we never need them). */
export type Headers = Readonly<Record<string, string>>;

/** Default bound on messages a subscription holds unread (see SubscribeOptions.pendingMax). */
export const SUBSCRIPTION_PENDING_MAX = 100_000;
/** Default bound on watch entries held unread; past it the watch ends with SlowConsumerError. */
export const WATCH_PENDING_MAX = 100_000;
/** Default bound on stream messages a reader or consumer has pulled but not yet taken. */
export const STREAM_PULL_MAX = 256;
/** Default for how long a JetStream/KV operation waits for the server (nats.js's default too). */
export const JS_TIMEOUT_MS_DEFAULT = 5_000;
/** Default JetStream duplicate window for msgId dedup (the server's default: two minutes). */
export const DUPLICATE_WINDOW_MS_DEFAULT = 120_000;

export interface Msg {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: Headers;
  /** Answers a request; false when the message carried no reply subject. */
  respond(data: Uint8Array, options?: { headers?: Headers }): boolean;
}

export interface PublishOptions {
  headers?: Headers;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group (chosen by the server). */
  queue?: string;
  /** Messages held unread before overflow. Default SUBSCRIPTION_PENDING_MAX. */
  pendingMax?: number;
  /**
   * What overflow does: 'drop' (default) discards the new message, counts it in `dropped` and emits
   * a 'slow-consumer' status — core NATS is at-most-once anyway; 'error' ends the subscription with
   * SlowConsumerError in `closed`.
   */
  overflow?: 'drop' | 'error';
}

/**
 * A subscription: a single-consumer AsyncIterable (iterate it once). It ends (the loop exits) on
 * unsubscribe(), drain/close of the bus, or an overflow with `overflow: 'error'`.
 */
export interface Subscription extends AsyncIterable<Msg> {
  readonly subject: string;
  /** Messages received but not yet taken by the reader. */
  readonly pending: number;
  /** Messages discarded because `pending` was at `pendingMax`. */
  readonly dropped: number;
  unsubscribe(): void;
  /** Resolves (never rejects) when the subscription ends: null, or the error that ended it. */
  readonly closed: Promise<NatsPortError | null>;
}

export interface RequestOptions {
  timeoutMs: number;
  headers?: Headers;
}

export interface KvOptions {
  /**
   * Bucket-wide TTL: a key not written for ttlMs disappears (no delete event is sent; NATS 2.9 has no
   * per-key TTL). Leases and heartbeats live in such buckets. Fixed by whoever creates the bucket first.
   */
  ttlMs?: number;
  /** Values kept per key (1..64), for watch history. Default 1. */
  history?: number;
  /** Open an existing bucket only, never create or reconfigure it (a client with read rights only). */
  bind?: boolean;
  /**
   * Bytes the bucket may hold; a write past it is refused (the server discards new, never old).
   * Fixed by whoever creates the bucket. Real NATS only: the simulator keeps no byte count.
   */
  bytesMax?: number;
}

/** A live value. The revision increases with every write to the bucket: use it as a fencing token. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
}

/** One change seen by a watch. */
export interface KvChange {
  readonly key: string;
  /** null for DEL and PURGE. */
  readonly value: Uint8Array | null;
  readonly revision: number;
  readonly operation: 'PUT' | 'DEL' | 'PURGE';
  /**
   * Whether the watcher is now up to date with the bucket as it was when the watch started: false
   * for replayed entries ('latest'/'history') except the last one, true from that one on (and for
   * every entry with 'updates'). The first `caughtUp` entry ends the initial state.
   */
  readonly caughtUp: boolean;
}

export interface KvWatchOptions {
  /** A key, or a filter with `*` / `>` wildcards (`procs.>`). Default: every key. */
  key?: string;
  /**
   * What comes before the live updates: 'updates' (default) nothing; 'latest' the last entry of each
   * matching key (a deleted key's DEL marker included); 'history' every retained entry.
   */
  include?: 'updates' | 'latest' | 'history';
  /** Shorthand for include: 'history'. */
  includeHistory?: boolean;
  /** Entries held unread before the watch ends with SlowConsumerError. Default WATCH_PENDING_MAX. */
  pendingMax?: number;
}

/** A watch: single-consumer, ordered by revision. stop() ends the iteration. */
export interface KvWatch extends AsyncIterable<KvChange> {
  stop(): void;
  readonly closed: Promise<NatsPortError | null>;
}

export interface Kv {
  readonly bucket: string;
  /** Writes only if the key has no live value (absent, deleted, purged or expired); else KeyExistsError. */
  create(key: string, value: Uint8Array): Promise<number>;
  put(key: string, value: Uint8Array): Promise<number>;
  /** The live value, or null when absent, deleted, purged or expired. */
  get(key: string): Promise<KvEntry | null>;
  /** Compare-and-set: writes only if the key is at expectedRevision; else WrongRevisionError. */
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  /** Leaves a DEL marker (watchers see it); with expectedRevision, only if the key is still there. */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /** Deletes the key and its history (watchers see PURGE). */
  purge(key: string): Promise<void>;
  /** Keys with a live value, each once, optionally matching a wildcard filter. */
  keys(filter?: string): Promise<string[]>;
  watch(options?: KvWatchOptions): Promise<KvWatch>;
}

export interface StreamOptions {
  /** Subjects stored, wildcards allowed; must not overlap another stream's. */
  subjects: string[];
  /** 'limits' keeps messages until a limit drops them; 'workqueue' removes each once acked. */
  retention?: 'limits' | 'workqueue';
  /** msgId dedup window. Default DUPLICATE_WINDOW_MS_DEFAULT. */
  duplicateWindowMs?: number;
  maxAgeMs?: number;
  /** Oldest messages are discarded past this many. */
  msgsMax?: number;
}

export interface StreamPublishOptions {
  /** Dedup key: a second publish with the same msgId inside the window is not stored again. */
  msgId?: string;
  headers?: Headers;
}

export interface PubAck {
  readonly stream: string;
  readonly seq: number;
  /** true when the msgId was seen within the duplicate window; `seq` is then the original's. */
  readonly duplicate: boolean;
}

export interface StreamInfo {
  readonly messages: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface StreamMsg {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: Headers;
  readonly seq: number;
}

/** A message from a durable consumer: ack it, or it comes back after ackWaitMs. */
export interface ConsumerMsg extends StreamMsg {
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  ack(): void;
  /** Asks for redelivery, after delayMs if given. */
  nak(delayMs?: number): void;
  /** Never deliver this message again. */
  term(): void;
}

/** A single-consumer iteration over stream messages; stop() ends it. */
export interface StreamIter<M> extends AsyncIterable<M> {
  stop(): void;
  readonly closed: Promise<NatsPortError | null>;
}

export interface ReadOptions {
  /** First sequence to read. Default 1 (from the start). */
  fromSeq?: number;
  /** Only subjects matching this (one filter; NATS 2.9 has no multi-filter). */
  filter?: string;
  /** Messages pulled ahead of the reader. Default STREAM_PULL_MAX. */
  pullMax?: number;
}

export interface ConsumerOptions {
  /** Where a new durable starts (ignored if it exists). Default 1. */
  fromSeq?: number;
  filter?: string;
  /** Unacked messages come back after this. Default 30 000. */
  ackWaitMs?: number;
  /** Deliveries per message before it is given up on (-1 unlimited). Default -1. */
  deliverMax?: number;
  /** Delivered-but-unacked messages in flight across all readers. Default 1000. */
  ackPendingMax?: number;
}

export interface DurableConsumer {
  readonly stream: string;
  readonly name: string;
  /** Reads the consumer; several readers (even in other processes) share its messages. */
  consume(options?: { pullMax?: number }): StreamIter<ConsumerMsg>;
}

export interface Stream {
  readonly name: string;
  publish(subject: string, data: Uint8Array, options?: StreamPublishOptions): Promise<PubAck>;
  info(): Promise<StreamInfo>;
  /** An ordered read (ephemeral, no acks) from a sequence, then following new messages. */
  read(options?: ReadOptions): StreamIter<StreamMsg>;
  /** A durable, explicitly acked consumer, created on first use with these options. */
  consumer(name: string, options?: ConsumerOptions): Promise<DurableConsumer>;
}

export type BusStatus =
  | { readonly type: 'disconnect' }
  | { readonly type: 'reconnect' }
  | { readonly type: 'slow-consumer'; readonly subject: string; readonly dropped: number }
  | { readonly type: 'error'; readonly error: Error }
  | { readonly type: 'closed' };

/** A JetStream object store (NATS 2.9): named blobs, chunked over the server's message size. */
export interface ObjectStore {
  /** Stores the object; resolves to where its one chunk is, when it has one chunk. */
  put(name: string, data: Uint8Array): Promise<ObjectLocation>;
  /**
   * null when there is no such object. `at`: where put() or locate() said its chunk was, which saves the
   * round trip that reads the object's info (a stale or wrong one falls back to that read).
   */
  get(name: string, at?: ObjectLocation): Promise<Uint8Array | null>;
  /** Where the object is (its info, not its data); null when there is no such object. */
  locate(name: string): Promise<ObjectLocation | null>;
  delete(name: string): Promise<void>;
}

/** An object of one chunk: the token naming that chunk in the store (`chunk`); absent for larger ones. */
export interface ObjectLocation {
  chunk?: string;
}

/** What a chunk token may be (nats.js names chunks by a nuid): one subject token, never a wildcard. */
export const CHUNK_TOKEN = /^[A-Za-z0-9]{1,64}$/;

/**
 * Who leads a replicated bucket's stream (its Raft group), and a way to move that leadership: a server
 * that dies while it leads a stream stops that stream for its peers' election timeout (4 to 9 s in
 * nats-server, fixed). Real NATS clusters only.
 */
export interface StreamLeadership {
  /**
   * The name of the server this connection is on, once connected, if it is this machine's own (the
   * connection was made `ordered` or with a `monitorUrl`): undefined on a machine without a NATS
   * server, whose process dies with none (a worker: docs/machines.md).
   */
  server(): string | undefined;
  /**
   * The server leading the bucket's stream, if every replica is current; undefined while it has no
   * leader, a replica is down or behind (moving leadership then would pile it onto the survivors), or
   * the stream is not replicated.
   */
  leaderOf(bucket: string): Promise<string | undefined>;
  /**
   * The bucket's stream leader (undefined while it has none) and its other replicas, each `healthy`
   * (current and heard from lately) and `absent` (offline, or silent for seconds: down or cut off, not
   * merely slow); undefined when the stream is not replicated.
   */
  replicasOf(bucket: string): Promise<StreamReplicas | undefined>;
  /** Asks the bucket's stream leader to hand leadership to a current replica (fast: no election timeout). */
  stepDown(bucket: string): Promise<void>;
  /**
   * JetStream's meta group (every consumer, so every KV listing and watch, is made through its leader),
   * as the connection's own server's monitoring reports it; undefined when unknown. `whole`: every peer
   * is current and was heard from lately (no server down or cut off).
   */
  metaGroup(): Promise<MetaGroup | undefined>;
}

export interface StreamReplicas {
  leader?: string;
  /** The replicas other than the leader. */
  peers: Array<{ name: string; healthy: boolean; absent: boolean }>;
}

export interface MetaGroup {
  leader: string;
  whole: boolean;
}

export interface Bus {
  /** Stream leadership of replicated buckets. Real NATS only; undefined when buckets have one replica (nothing to move). */
  leadership?(): StreamLeadership | undefined;
  /** Opens (or creates) an object store bucket. Real NATS only: the simulator has none. */
  objectStore?(bucket: string): Promise<ObjectStore>;
  /** The client's name (shown by the server's monitoring; the simulator's fault key). */
  readonly name: string;
  /** Fire-and-forget. Throws InvalidArgumentError on a bad subject, ClosedError after close. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  subscribe(subject: string, options?: SubscribeOptions): Subscription;
  /** One reply, or NoRespondersError / TimeoutError. */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Msg>;
  /**
   * A round trip to the server: after it, earlier publishes and subscriptions have reached it.
   * Rejects with DisconnectedError when the connection is (or goes) down meanwhile.
   */
  flush(): Promise<void>;
  /** Opens the bucket, creating it with these options if absent. */
  kv(bucket: string, options?: KvOptions): Promise<Kv>;
  /** Deletes a KV bucket and everything in it; a bucket that is not there is no error. Real NATS only. */
  removeKv?(bucket: string): Promise<void>;
  /** Opens the stream, creating it with these options if absent (an existing one keeps its config). */
  stream(name: string, options: StreamOptions): Promise<Stream>;
  /** Connection events; returns the function that removes the listener. */
  onStatus(listener: (s: BusStatus) => void): () => void;
  /** Unsubscribes everything, lets readers take what already arrived, then closes. */
  drain(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the connection is closed: null, or the error that closed it. */
  readonly closed: Promise<NatsPortError | null>;
}
