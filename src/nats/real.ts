import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { NatsPortError } from './errors.js';
import type { Bus, Kv, KvEntry, KvWatch, Msg, Subscription } from './types.js';

/** Bound on messages a subscription may hold unread; past it NATS marks the consumer slow. */
export const SUBSCRIPTION_PENDING_MAX = 100_000;

/**
 * Bound on one KV operation. nats.js 3 against nats-server 2.9 can leave a call pending forever (seen:
 * create of a key right after its delete); an actor awaiting it would stall. Past the bound the call
 * fails with a typed timeout and the caller retries or reports.
 */
export const KV_OP_TIMEOUT_MS = 5_000;

export const KEYS_ATTEMPTS_MAX = 3;

function bounded<T>(op: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NatsPortError('timeout', `KV ${op} did not complete within ${KV_OP_TIMEOUT_MS} ms`)), KV_OP_TIMEOUT_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function classify(e: unknown): unknown {
  const msg = (e as Error)?.message ?? '';
  const name = (e as Error)?.name ?? '';
  if (/wrong last sequence/i.test(msg)) return new NatsPortError(/create/i.test(msg) ? 'key-exists' : 'wrong-revision', msg, { cause: e });
  if (name === 'NoRespondersError' || /no responders/i.test(msg)) return new NatsPortError('no-responders', msg, { cause: e });
  if (name === 'TimeoutError' || /timeout/i.test(msg)) return new NatsPortError('timeout', msg, { cause: e });
  if (name === 'ClosedConnectionError') return new NatsPortError('closed', msg, { cause: e });
  return e;
}

const entry = (e: { key: string; value: Uint8Array; revision: number; operation: 'PUT' | 'DEL' | 'PURGE' }): KvEntry => ({
  key: e.key,
  value: e.operation === 'PUT' ? e.value : null,
  revision: e.revision,
  operation: e.operation,
});

class RealKv implements Kv {
  constructor(private readonly kv: KV) {}

  async create(key: string, value: Uint8Array): Promise<number> {
    try {
      return await bounded('create', this.kv.create(key, value));
    } catch (e) {
      const c = classify(e);
      throw c instanceof NatsPortError && c.type === 'wrong-revision' ? new NatsPortError('key-exists', `key ${key} exists`, { cause: e }) : c;
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return bounded('put', this.kv.put(key, value)).catch((e: unknown) => Promise.reject(classify(e)));
  }

  async get(key: string): Promise<KvEntry | null> {
    const e = await bounded('get', this.kv.get(key)).catch((err: unknown) => Promise.reject(classify(err)));
    // A deleted key reads as absent (nats.js hands back the delete marker).
    return e === null || e.operation !== 'PUT' ? null : entry(e);
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    try {
      return await bounded('update', this.kv.update(key, value, expectedRevision));
    } catch (e) {
      const c = classify(e);
      throw c instanceof NatsPortError && c.type === 'key-exists' ? new NatsPortError('wrong-revision', (e as Error).message, { cause: e }) : c;
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    await bounded('delete', this.kv.delete(key, expectedRevision === undefined ? {} : { previousSeq: expectedRevision })).catch((e: unknown) => Promise.reject(classify(e)));
  }

  /** Each key once: nats.js lists keys through a consumer, and writes during the listing repeat keys. */
  async keys(filter?: string): Promise<string[]> {
    const list = async (): Promise<string[]> => {
      const out = new Set<string>();
      for await (const k of await this.kv.keys(filter)) out.add(k);
      return [...out];
    };
    // Listing is an idempotent read and nats.js's key consumer occasionally stalls under load, so a
    // stalled attempt is simply made again (KEYS_ATTEMPTS_MAX times).
    for (let attempt = 1; ; attempt++) {
      try {
        return await bounded('keys', list());
      } catch (e) {
        if (attempt >= KEYS_ATTEMPTS_MAX || (e as NatsPortError).type !== 'timeout') throw e;
      }
    }
  }

  async watch(options: { key?: string; includeHistory?: boolean }): Promise<KvWatch> {
    const it = await this.kv.watch({ ...(options.key === undefined ? {} : { key: options.key }), include: options.includeHistory === true ? 'history' : 'updates' });
    return {
      stop: () => it.stop(),
      async *[Symbol.asyncIterator]() {
        for await (const e of it) yield entry(e);
      },
    };
  }
}

class RealBus implements Bus {
  readonly #kvm: Kvm;
  constructor(private readonly nc: NatsConnection) {
    this.#kvm = new Kvm(nc);
  }

  publish(subject: string, data: Uint8Array): void {
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, options: { queue?: string } = {}): Subscription {
    const sub = this.nc.subscribe(subject, { ...(options.queue === undefined ? {} : { queue: options.queue }), slow: SUBSCRIPTION_PENDING_MAX });
    return {
      unsubscribe: () => sub.unsubscribe(),
      async *[Symbol.asyncIterator]() {
        for await (const m of sub) yield { subject: m.subject, data: m.data, respond: (d: Uint8Array) => m.respond(d) } satisfies Msg;
      },
    };
  }

  async request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Msg> {
    try {
      const m = await this.nc.request(subject, data, { timeout: options.timeoutMs });
      return { subject: m.subject, data: m.data, respond: () => false };
    } catch (e) {
      throw classify(e);
    }
  }

  async kv(bucket: string, options: { ttlMs?: number; history?: number } = {}): Promise<Kv> {
    const kv = await bounded('open', this.#kvm.create(bucket, { history: options.history ?? 1, ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }) }));
    return new RealKv(kv);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}

/** Connects to real NATS servers. */
export async function connectBus(options: { servers: string[]; name: string }): Promise<Bus> {
  const nc = await connect({ servers: options.servers, name: options.name, maxReconnectAttempts: -1 });
  return new RealBus(nc);
}
