import { AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { KvWatchInclude, type KV, type KvEntry as NatsKvEntry } from '@nats-io/kv';
import { nanos } from '@nats-io/transport-node';
import { InvalidArgumentError, KeyExistsError, NatsPortError, NoRespondersError, NotFoundError, SlowConsumerError, TimeoutError, WrongRevisionError } from './errors.js';
import { BoundedQueue } from './queue.js';
import { bounded, classify, fromNatsHeaders, toNatsHeaders, type JetStreamHost } from './real-common.js';
import { checkFilter, checkKey, checkKeyFilter, checkName, checkPositiveInt, checkRevision, checkSubject, matches } from './subject.js';
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
} from './types.js';
import { checkConsumerOptions, checkStreamOptions, CONSUMER_DEFAULTS } from './stream-options.js';

/** JetStream API error codes we act on (nats-server's, stable across versions). */
const CODE = { wrongLastSeq: 10071, wrongLastSeqUnknown: 10164, streamNotFound: 10059, consumerNotFound: 10014 } as const;

const apiCode = (e: unknown): number | undefined => (e instanceof JetStreamApiError ? e.code : undefined);
/** The server's answer about a stream that is not there. */
export const isStreamNotFound = (e: unknown): boolean => apiCode(e) === CODE.streamNotFound;
const wrongSeq = (e: unknown): boolean => apiCode(e) === CODE.wrongLastSeq || apiCode(e) === CODE.wrongLastSeqUnknown;

/**
 * Listing keys is an idempotent read and nats.js's key consumer occasionally stalls under load: a
 * stalled listing is made again, up to this many attempts.
 */
export const KEYS_ATTEMPTS_MAX = 6;
/** How long opening a listing's consumer may take before it is tried again. */
export const KEYS_OPEN_TIMEOUT_MS = 1_500;
/** Opening a watch while the server's consumer API has no responder (a config reload): tries, and the pause between. */
export const WATCH_OPEN_ATTEMPTS_MAX = 5;
export const WATCH_OPEN_RETRY_MS = 20;
/**
 * A KV call the bucket's stream had no leader for (a clustered JetStream electing one after a server
 * was lost takes a few seconds) is sent again, this much later per attempt, up to NO_LEADER_RETRY_MS_MAX
 * between tries, until the call's own timeout: no responder means nothing was stored.
 */
export const NO_LEADER_RETRY_MS = 50;
export const NO_LEADER_RETRY_MS_MAX = 250;
/**
 * One attempt of a key read: one that got no answer this long is asked again. A stream electing a leader
 * after its server died answers a later request, not the one made before: the chaos service scenario's
 * recovery waited out a whole JetStream timeout (5 s) on one get while the proc table's stream had a
 * leader again.
 */
export const GET_ATTEMPT_MS = 1_000;

export class RealKv implements Kv {
  constructor(
    private readonly bus: JetStreamHost,
    private readonly kv: KV,
    readonly bucket: string,
    private readonly timeoutMs: number,
  ) {}

  #fail(e: unknown, op: string, key: string): unknown {
    return classify(e, `KV ${op} ${this.bucket}/${key}`, this.timeoutMs);
  }

  /**
   * Runs `call` again while the stream has no leader (see NO_LEADER_RETRY_MS); other failures as they
   * come. A `read` is idempotent: an attempt that gets no answer within GET_ATTEMPT_MS is made again.
   */
  async #untilLeader<T>(op: string, key: string, call: () => Promise<T>, read = false): Promise<T> {
    const what = `KV ${op} ${this.bucket}/${key}`;
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const leftMs = Math.max(1, deadline - Date.now());
      try {
        return await bounded(call(), what, read ? Math.min(GET_ATTEMPT_MS, leftMs) : leftMs);
      } catch (e) {
        const pauseMs = Math.min(NO_LEADER_RETRY_MS * attempt, NO_LEADER_RETRY_MS_MAX);
        const type = (this.#fail(e, op, key) as { type?: string }).type;
        if (!(type === 'no-responders' || (read && type === 'timeout')) || Date.now() + pauseMs >= deadline) throw type === 'timeout' ? new TimeoutError(what, this.timeoutMs, { cause: e }) : e;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    }
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    try {
      return await this.#untilLeader('create', key, () => this.kv.create(key, value));
    } catch (e) {
      throw wrongSeq(e) ? new KeyExistsError(this.bucket, key, { cause: e }) : this.#fail(e, 'create', key);
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.#untilLeader('put', key, () => this.kv.put(key, value)).catch((e: unknown) => Promise.reject(this.#fail(e, 'put', key)));
  }

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    const e = await this.#untilLeader('get', key, () => this.kv.get(key), true).catch((err: unknown) => Promise.reject(this.#fail(err, 'get', key)));
    // nats.js hands back DEL/PURGE markers as entries; for the port a deleted key is absent.
    return e === null || e.operation !== 'PUT' ? null : { key: e.key, value: e.value, revision: e.revision };
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    checkKey(key);
    checkRevision(expectedRevision);
    try {
      return await this.#untilLeader('update', key, () => this.kv.update(key, value, expectedRevision));
    } catch (e) {
      throw wrongSeq(e) ? new WrongRevisionError(this.bucket, key, expectedRevision, { cause: e }) : this.#fail(e, 'update', key);
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    checkKey(key);
    if (expectedRevision !== undefined) checkRevision(expectedRevision);
    try {
      await this.#untilLeader('delete', key, () => this.kv.delete(key, expectedRevision === undefined ? {} : { previousSeq: expectedRevision }));
    } catch (e) {
      throw wrongSeq(e) ? new WrongRevisionError(this.bucket, key, expectedRevision ?? 0, { cause: e }) : this.#fail(e, 'delete', key);
    }
  }

  async purge(key: string): Promise<void> {
    checkKey(key);
    await this.#untilLeader('purge', key, () => this.kv.purge(key)).catch((e: unknown) => Promise.reject(this.#fail(e, 'purge', key)));
  }

  /** Each key once: nats.js lists keys through a consumer, and writes during the listing repeat keys. */
  async keys(filter = '>'): Promise<string[]> {
    checkKeyFilter(filter);
    const list = async (): Promise<string[]> => {
      const out = new Set<string>();
      // Opening is bounded on its own: a consumer the meta leader placed on a server that has just died
      // never answers, and waiting out the whole timeout for it cost a successor's recovery 5 s.
      for await (const k of await bounded(this.kv.keys(filter), `KV keys ${this.bucket}/${filter}: opening its consumer`, Math.min(KEYS_OPEN_TIMEOUT_MS, this.timeoutMs))) out.add(k);
      return [...out];
    };
    for (let attempt = 1; ; attempt++) {
      try {
        return await bounded(list(), `KV keys ${this.bucket}/${filter}`, this.timeoutMs);
      } catch (e) {
        // Also retried: no responder on the consumer API, which a server reloading its users has for a moment.
        const failure = this.#fail(e, 'keys', filter);
        if (attempt >= KEYS_ATTEMPTS_MAX || !(e instanceof TimeoutError || (failure as { type?: string }).type === 'no-responders')) throw failure;
      }
    }
  }

  /**
   * A server reloading its users (a realm made or removed: src/cluster/realm-users.ts) has no responder
   * on the consumer API for a few milliseconds: a watch opened then is tried again, briefly.
   */
  async #openWatch(key: string, mode: KvWatchInclude): Promise<Awaited<ReturnType<KV['watch']>>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await bounded(this.kv.watch({ key, include: mode }), `KV watch ${this.bucket}/${key}`, this.timeoutMs);
      } catch (e) {
        // Also tried again: a timeout, which a clustered stream electing a leader gives (an ordered
        // consumer made meanwhile and never answered for ends by the server's inactivity threshold).
        const type = (this.#fail(e, 'watch', key) as { type?: string }).type;
        if ((type !== 'no-responders' && type !== 'timeout') || attempt >= WATCH_OPEN_ATTEMPTS_MAX) throw this.#fail(e, 'watch', key);
        await new Promise((r) => setTimeout(r, WATCH_OPEN_RETRY_MS * attempt));
      }
    }
  }

  async watch(options: KvWatchOptions = {}): Promise<KvWatch> {
    const key = options.key ?? '>';
    checkKeyFilter(key);
    const include = options.include ?? (options.includeHistory === true ? 'history' : 'updates');
    const pendingMax = options.pendingMax ?? WATCH_PENDING_MAX;
    checkPositiveInt(pendingMax, 'pendingMax');
    const mode = include === 'history' ? KvWatchInclude.AllHistory : include === 'latest' ? KvWatchInclude.LastValue : KvWatchInclude.UpdatesOnly;
    const it = await this.#openWatch(key, mode);
    let untrack = (): boolean => false;
    // nats.js buffers a watch without bound; the pump below moves it into a bounded queue at once.
    const q = new BoundedQueue<KvChange>(pendingMax, 'error', () => new SlowConsumerError(`KV ${this.bucket} watch ${key}`, pendingMax), {
      onEnd: () => {
        untrack();
        it.stop();
      },
    });
    untrack = this.bus.track({ core: false, end: (discard) => q.end(null, { discard }) });
    void (async () => {
      try {
        for await (const e of it) if (!q.push(change(e))) break;
        q.end(null);
      } catch (e) {
        q.end(this.#fail(e, 'watch', key) as NatsPortError);
      }
    })();
    return { stop: () => q.end(null, { discard: true }), closed: q.closed, [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
  }
}

function change(e: NatsKvEntry & { isUpdate: boolean }): KvChange {
  return { key: e.key, value: e.operation === 'PUT' ? e.value : null, revision: e.revision, operation: e.operation, caughtUp: e.isUpdate }; // nats.js flags the last replayed entry too
}

export class RealStream implements Stream {
  private constructor(
    private readonly bus: JetStreamHost,
    private readonly js: JetStreamClient,
    readonly name: string,
    private readonly subjects: readonly string[],
    private readonly timeoutMs: number,
  ) {}

  /** Binds to the stream, creating it if absent; an existing stream keeps its configuration. */
  static async open(bus: JetStreamHost, js: JetStreamClient, name: string, o: StreamOptions, timeoutMs: number, replicas = 1): Promise<RealStream> {
    checkName(name, 'stream name');
    checkStreamOptions(o);
    const jsm = await bus.jsm().catch((e: unknown) => Promise.reject(classify(e, 'JetStream', timeoutMs)));
    try {
      const info = await jsm.streams.info(name);
      return new RealStream(bus, js, name, info.config.subjects ?? [], timeoutMs);
    } catch (e) {
      if (apiCode(e) !== CODE.streamNotFound) throw classify(e, `opening stream ${name}`, timeoutMs);
    }
    try {
      const info = await jsm.streams.add({
        name,
        subjects: [...o.subjects],
        retention: o.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(o.duplicateWindowMs ?? DUPLICATE_WINDOW_MS_DEFAULT),
        ...(o.maxAgeMs === undefined ? {} : { max_age: nanos(o.maxAgeMs) }),
        ...(o.msgsMax === undefined ? {} : { max_msgs: o.msgsMax }),
      });
      return new RealStream(bus, js, name, info.config.subjects ?? [], timeoutMs);
    } catch (e) {
      throw classify(e, `creating stream ${name}`, timeoutMs);
    }
  }

  async publish(subject: string, data: Uint8Array, options: StreamPublishOptions = {}): Promise<PubAck> {
    checkSubject(subject);
    if (!this.subjects.some((f) => matches(f, subject))) throw new InvalidArgumentError(`stream ${this.name} does not store "${subject}" (its subjects: ${this.subjects.join(', ')})`);
    if (options.msgId !== undefined && options.msgId.length === 0) throw new InvalidArgumentError('msgId must not be empty');
    const h = toNatsHeaders(options.headers);
    try {
      const pa = await this.js.publish(subject, data, { ...(options.msgId === undefined ? {} : { msgID: options.msgId }), ...(h === undefined ? {} : { headers: h }), timeout: this.timeoutMs });
      return { stream: pa.stream, seq: pa.seq, duplicate: pa.duplicate };
    } catch (e) {
      const c = classify(e, `stream publish on ${subject}`, this.timeoutMs);
      throw c instanceof NoRespondersError ? new NotFoundError(`no stream stores "${subject}" any more (was ${this.name} deleted?)`, { cause: e }) : c;
    }
  }

  async info(): Promise<StreamInfo> {
    try {
      const i = await (await this.bus.jsm()).streams.info(this.name);
      return { messages: i.state.messages, firstSeq: i.state.first_seq, lastSeq: i.state.last_seq };
    } catch (e) {
      throw apiCode(e) === CODE.streamNotFound ? new NotFoundError(`stream ${this.name} does not exist`, { cause: e }) : classify(e, `stream info ${this.name}`, this.timeoutMs);
    }
  }

  read(options: ReadOptions = {}): StreamIter<StreamMsg> {
    const fromSeq = options.fromSeq ?? 1;
    checkPositiveInt(fromSeq, 'fromSeq');
    if (options.filter !== undefined) checkFilter(options.filter, 'stream filter');
    const pullMax = options.pullMax ?? STREAM_PULL_MAX;
    checkPositiveInt(pullMax, 'pullMax');
    return this.#pump(`stream ${this.name} read`, pullMax, async () => {
      const c = await this.js.consumers.get(this.name, {
        ...(options.filter === undefined ? {} : { filter_subjects: options.filter }),
        ...(fromSeq === 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }),
      });
      return c.consume({ max_messages: pullMax });
    }, streamMsg);
  }

  async consumer(name: string, options: ConsumerOptions = {}): Promise<DurableConsumer> {
    checkName(name, 'consumer name');
    checkConsumerOptions(options);
    const o = { ...CONSUMER_DEFAULTS, ...options };
    const jsm = await this.bus.jsm().catch((e: unknown) => Promise.reject(classify(e, 'JetStream', this.timeoutMs)));
    try {
      await jsm.consumers.info(this.name, name);
    } catch (e) {
      if (apiCode(e) !== CODE.consumerNotFound) throw apiCode(e) === CODE.streamNotFound ? new NotFoundError(`stream ${this.name} does not exist`, { cause: e }) : classify(e, `consumer ${name}`, this.timeoutMs);
      await jsm.consumers
        .add(this.name, {
          durable_name: name,
          ack_policy: AckPolicy.Explicit,
          ...(o.fromSeq === 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.fromSeq }),
          ...(o.filter === undefined ? {} : { filter_subject: o.filter }),
          ack_wait: nanos(o.ackWaitMs),
          max_deliver: o.deliverMax,
          max_ack_pending: o.ackPendingMax,
        })
        .catch((err: unknown) => Promise.reject(classify(err, `creating consumer ${name}`, this.timeoutMs)));
    }
    return {
      stream: this.name,
      name,
      consume: (c = {}) => {
        const pullMax = c.pullMax ?? STREAM_PULL_MAX;
        checkPositiveInt(pullMax, 'pullMax');
        return this.#pump(`consumer ${this.name}/${name}`, pullMax, async () => (await this.js.consumers.get(this.name, name)).consume({ max_messages: pullMax }), consumerMsg);
      },
    };
  }

  /**
   * Moves messages from a nats.js pull consumer into a bounded queue, waiting while the queue is
   * full: nats.js pulls at most pullMax ahead, so at most 2 * pullMax messages are ever held.
   */
  #pump<M>(what: string, pullMax: number, start: () => Promise<ConsumerMessages>, convert: (m: JsMsg) => M): StreamIter<M> {
    let space: (() => void) | undefined;
    let messages: ConsumerMessages | undefined;
    let untrack = (): boolean => false;
    const q = new BoundedQueue<M>(pullMax, 'error', () => new SlowConsumerError(what, pullMax), {
      onTake: () => space?.(),
      onEnd: () => {
        untrack();
        space?.();
        void messages?.close();
      },
    });
    untrack = this.bus.track({ core: false, end: (discard) => q.end(null, { discard }) });
    void (async () => {
      try {
        messages = await start();
        if (q.ended) return void messages.close();
        for await (const m of messages) {
          while (q.pending >= pullMax && !q.ended) await new Promise<void>((r) => (space = r));
          if (!q.push(convert(m))) break;
        }
        q.end(null);
      } catch (e) {
        q.end(classify(e, what, this.timeoutMs) as NatsPortError);
      }
    })();
    return { stop: () => q.end(null, { discard: true }), closed: q.closed, [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
  }
}

function streamMsg(m: JsMsg): StreamMsg {
  const headers = fromNatsHeaders(m.headers);
  return { subject: m.subject, data: m.data, seq: m.seq, ...(headers === undefined ? {} : { headers }) };
}

function consumerMsg(m: JsMsg): ConsumerMsg {
  return {
    ...streamMsg(m),
    deliveryCount: m.info.deliveryCount,
    ack: () => m.ack(),
    nak: (delayMs) => m.nak(delayMs),
    term: () => m.term(),
  };
}
