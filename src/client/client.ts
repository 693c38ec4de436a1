import { ControlError } from '../control/errors.js';
import { ProcTable } from '../control/proc-table.js';
import { BUCKET, EVICT, NODE, keyedPid, REALM_CREATE, REALM_QUOTA, REALM_REMOVE, SPAWN, call, decodeNameRecord, decodeNodeRecord, decodeProcRecord, decodeRealmRecord, nameKey, type EvictRequest, type NameRecord, type NodeRecord, type NodeRequest, type ProcRecord, type RealmQuota, type RealmRecord, type RealmRequest, type Rpc, type SpawnRequest } from '../control/protocol/index.js';
import type { SpecInput } from '../proc/spec.js';
import type { Status } from '../proc/types.js';
import type { Bus, Kv } from '../nats/types.js';
import type { DataPathStatus } from '../datapath/status.js';
import { realClock, realTimers } from '../ports/real.js';
import type { Clock, Random, Timers } from '../ports/types.js';
import { randomInt } from 'node:crypto';
import { traceSpawn } from '../spawn-trace.js';

/** Spawn keys from the operating system's generator: clients on many machines must not collide. */
const cryptoRandom: Random = { next: () => randomInt(2 ** 48) / 2 ** 48, int: (n) => randomInt(n) };

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** Records of one `psAll` page unless asked otherwise. */
export const PS_PAGE_DEFAULT = 1_000;
/**
 * A spawn keeps trying across a leader change this long: ten lease TTLs of the default timing. A
 * failover is the lease TTL and a recovery, but a machine that dies with its NATS server stops what that
 * server led (streams, JetStream's meta group) for an election of 4 to 9 s, fixed in nats-server, and
 * the chaos scenarios measured recoveries waiting 10 to 16 s for one: 15 s failed spawns that a leader
 * took a moment later.
 */
export const SPAWN_TIMEOUT_MS_DEFAULT = 30_000;
/** One attempt: a paused leader is given up on after this, and the key sent again. */
export const SPAWN_ATTEMPT_TIMEOUT_MS = 2_000;
const SPAWN_RETRY_MS = 100;
/** Random base-36 characters of a key the client makes: 62 bits, no collision in practice. */
const SPAWN_KEY_CHARS = 12;
const KEY_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
/** untilScheduler's default: about 8 s of retries, enough for a first election or a failover. */
export const UNTIL_SCHEDULER_ATTEMPTS = 80;
export const UNTIL_SCHEDULER_DELAY_MS = 100;
/** waitStart / waitExit give up after this unless told otherwise. */
export const WAIT_TIMEOUT_MS_DEFAULT = 60_000;

/**
 * Runs `fn` again while no scheduler answers (a fresh cluster still electing one, a failover): up to
 * `attempts` times, `delayMs` apart. Any other error, and the last attempt's, goes to the caller.
 */
export async function untilScheduler<T>(fn: () => Promise<T>, options: { attempts?: number; delayMs?: number } = {}): Promise<T> {
  const { attempts = UNTIL_SCHEDULER_ATTEMPTS, delayMs = UNTIL_SCHEDULER_DELAY_MS } = options;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || (e as { type?: string }).type !== 'no-scheduler') throw e;
      await new Promise<void>((r) => realTimers.setTimeout(r, delayMs));
    }
  }
}
export const DEFAULT_EVICT_GRACE_MS = 2_000;
/** A realm's removal waits for its procs to be evicted. */
export const REALM_REMOVE_TIMEOUT_MS = 30_000;
/** A data-path call's reply may take this much longer than the call's own timeout (the NATS hops). */
export const CALL_REPLY_SLACK_MS = 1_000;

/** A call through a node's data path failed; `type` is the data path's own (pool-exhausted, call-timeout, unknown-target, ...). */
export class DataPathCallError extends Error {
  constructor(readonly type: string, message: string) {
    super(message);
    this.name = 'DataPathCallError';
  }
}

export class WaitTimeoutError extends Error {
  readonly type = 'wait-timeout';
  constructor(readonly pid: string, readonly what: string, readonly timeoutMs: number) {
    super(`proc ${pid} did not ${what} within ${timeoutMs} ms`);
    this.name = 'WaitTimeoutError';
  }
}

/**
 * What any client — a test, the CLI, a proc — uses to drive a cluster: spawn, waitStart, waitExit,
 * evict, and listings. Everything goes through NATS; nothing assumes the cluster runs on this machine.
 */
export class SigmaClient {
  readonly #table: ProcTable;

  private constructor(
    readonly bus: Bus,
    private readonly procs: Kv,
    live: Kv,
    private readonly nodesKv: Kv,
    private readonly namesKv: Kv,
    private readonly realmsKv: Kv,
    private readonly timers: Timers,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    this.#table = new ProcTable(procs, live);
  }

  /** `timers` and `clock` bound the waits, `random` makes spawn keys; the simulator passes its own. */
  static async connect(bus: Bus, options: { timers?: Timers; clock?: Clock; random?: Random } = {}): Promise<SigmaClient> {
    const [procs, nodes, names, realms, live] = await Promise.all([bus.kv(BUCKET.procs), bus.kv(BUCKET.nodes), bus.kv(BUCKET.names), bus.kv(BUCKET.realms), bus.kv(BUCKET.live)]);
    return new SigmaClient(bus, procs, live, nodes, names, realms, options.timers ?? realTimers, options.clock ?? realClock, options.random ?? cryptoRandom);
  }

  /**
   * Resolves with the pid once the spawn is durable; rejects with a ControlError naming what is wrong.
   * Exactly once: the request carries an idempotency key (`key`, or one made for this call) and is sent
   * again, with the same key, until a scheduler answers or `timeoutMs` has passed, so a leader change
   * in between neither loses the spawn nor runs it twice. The same key later gives the same pid.
   */
  async spawn(spec: SpecInput, options: { timeoutMs?: number; key?: string } = {}): Promise<string> {
    const key = options.key ?? this.#newKey();
    const deadlineMs = this.clock.nowMs() + (options.timeoutMs ?? SPAWN_TIMEOUT_MS_DEFAULT);
    for (let attempt = 1; ; attempt++) {
      const leftMs = deadlineMs - this.clock.nowMs();
      const fresh = options.key === undefined && attempt === 1;
      let reply;
      try {
        traceSpawn('client.send', keyedPid(spec.realm ?? 'default', key));
        reply = await call(this.bus, SPAWN.subject, SPAWN.reply, { ...spec, idempotencyKey: key, ...(fresh ? { fresh } : {}), timeLeftMs: Math.max(0, leftMs) } satisfies SpawnRequest, Math.max(1, Math.min(SPAWN_ATTEMPT_TIMEOUT_MS, leftMs)));
      } catch (e) {
        const type = (e as { type?: string }).type;
        if (type !== 'no-responders' && type !== 'timeout') throw e;
        if (this.clock.nowMs() + SPAWN_RETRY_MS >= deadlineMs) {
          // An answer lost, not a spawn: a record under the key's pid means a scheduler took it (the chaos
          // partition scenario reported spawns failed that had run). Read within what is left of the
          // deadline, never past it. A create still in flight can land later: the error says the key finds out.
          const pid = keyedPid(spec.realm ?? 'default', key);
          if ((await this.#within(deadlineMs, this.proc(pid))) !== undefined) return pid;
          throw new ControlError('no-scheduler', `no scheduler answered within ${options.timeoutMs ?? SPAWN_TIMEOUT_MS_DEFAULT} ms (${attempt} attempts, the last: ${type}): no leader was elected meanwhile, and no proc of key ${key} is recorded (one still in flight may yet be: spawn again with that key to find out). A failover takes about the lease TTL; if none comes, the cluster is not running (\`npm run cluster\`)`);
        }
        await new Promise<void>((r) => this.timers.setTimeout(r, SPAWN_RETRY_MS));
        continue;
      }
      if (!reply.ok) throw ControlError.fromWire(reply.error);
      traceSpawn('client.reply', reply.pid);
      return reply.pid;
    }
  }

  /** `p`, or undefined once `deadlineMs` has passed (or it failed). */
  #within<T>(deadlineMs: number, p: Promise<T>): Promise<T | undefined> {
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => resolve(undefined), Math.max(0, deadlineMs - this.clock.nowMs()));
      p.then(
        (v) => {
          timer.cancel();
          resolve(v);
        },
        () => {
          timer.cancel();
          resolve(undefined);
        },
      );
    });
  }

  #newKey(): string {
    let key = '';
    for (let i = 0; i < SPAWN_KEY_CHARS; i++) key += KEY_ALPHABET[this.random.int(KEY_ALPHABET.length)];
    return key;
  }

  /** Resolves once the proc runs (or has already exited). */
  waitStart(pid: string, options: { timeoutMs?: number } = {}): Promise<ProcRecord> {
    return this.#waitFor(pid, 'start', (r) => r.state === 'running' || r.state === 'exited', options.timeoutMs);
  }

  /** Resolves with the proc's final status, read from the durable proc table. */
  async waitExit(pid: string, options: { timeoutMs?: number } = {}): Promise<Status> {
    const r = await this.#waitFor(pid, 'exit', (rec) => rec.state === 'exited', options.timeoutMs);
    return r.status!;
  }

  async evict(pid: string, options: { graceMs?: number; timeoutMs?: number } = {}): Promise<void> {
    const reply = await this.#request(EVICT, { pid, graceMs: options.graceMs ?? DEFAULT_EVICT_GRACE_MS } satisfies EvictRequest, options.timeoutMs);
    if (!reply.ok) throw ControlError.fromWire(reply.error);
  }

  async proc(pid: string): Promise<ProcRecord | undefined> {
    return (await this.#table.get(pid))?.record;
  }

  /**
   * Procs not yet exited, oldest first, read through the table's live index (as fast with a long history
   * as without). `all`: the whole table, exited procs included, in one read: for small tables (tests);
   * psAll pages.
   */
  async ps(options: { realm?: string; all?: boolean } = {}): Promise<ProcRecord[]> {
    const records = options.all === true ? await this.#table.list() : await this.#table.liveRecords({ repair: false });
    return records.filter((r) => options.realm === undefined || r.spec.realm === options.realm).sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** The whole table, exited procs included, a page at a time in pid order; `next` is the `after` of the next page. */
  async psAll(options: { realm?: string; limit?: number; after?: string } = {}): Promise<{ records: ProcRecord[]; next?: string }> {
    const page = await this.#table.page(options.limit ?? PS_PAGE_DEFAULT, options.after);
    return { ...page, records: page.records.filter((r) => options.realm === undefined || r.spec.realm === options.realm) };
  }

  async nodes(): Promise<NodeRecord[]> {
    return (await readAll(this.nodesKv, decodeNodeRecord)).sort((a, b) => a.id.localeCompare(b.id));
  }

  async names(realm?: string): Promise<NameRecord[]> {
    const all = await readAll(this.namesKv, decodeNameRecord);
    return all.filter((n) => realm === undefined || n.realm === realm);
  }

  /** The data path of one node: mode, pools, endpoints, and the descriptors it refused (and why). */
  async dataPathStatus(node: string, options: { timeoutMs?: number } = {}): Promise<DataPathStatus> {
    let reply;
    try {
      reply = await call(this.bus, NODE.subject(node), NODE.dataPathStatus, { op: 'datapath-status' } satisfies NodeRequest, options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    } catch (e) {
      throw new ControlError('no-scheduler', `node ${node} did not answer (${(e as { type?: string }).type ?? (e as Error).message}); is it running?`);
    }
    if (!reply.ok) throw ControlError.fromWire(reply.error);
    return reply.status;
  }

  /**
   * Calls the service `target` of `realm` through the data path of the node it runs on (the payload is
   * copied into that realm's pool there): what a gateway does, and `sigma call`.
   */
  async dataPathCall(target: string, payload: string, options: { realm?: string; timeoutMs?: number } = {}): Promise<string> {
    const realm = options.realm ?? 'default';
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const startMs = this.clock.nowMs();
    const rec = await this.#nameWithin(nameKey(realm, target).key, timeoutMs);
    if (rec?.node === undefined) throw new DataPathCallError('unknown-target', `no service "${target}" with a data-path endpoint in realm ${realm}`);
    // The call's timeout covers the name's read too: the node gets what is left of it.
    const leftMs = Math.max(1, timeoutMs - (this.clock.nowMs() - startMs));
    let reply;
    try {
      const req: NodeRequest = { op: 'datapath-call', realm, target, payload, timeoutMs: leftMs };
      reply = await call(this.bus, NODE.subject(rec.node), NODE.dataPathCall, req, leftMs + CALL_REPLY_SLACK_MS);
    } catch (err) {
      throw new DataPathCallError('node-unreachable', `node ${rec.node} did not answer (${(err as { type?: string }).type ?? (err as Error).message})`);
    }
    if (!reply.ok) throw new DataPathCallError(reply.error.type, reply.error.message);
    return reply.answer;
  }

  /** A name record, read within `timeoutMs` (the names bucket's stream may be electing a leader: a KV get then waits its own timeout). */
  async #nameWithin(key: string, timeoutMs: number): Promise<NameRecord | undefined> {
    let timer: { cancel(): void } | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = this.timers.setTimeout(() => reject(new DataPathCallError('call-timeout', `the name record ${key} could not be read within ${timeoutMs} ms (the names bucket may be electing a leader); try again`)), timeoutMs);
    });
    try {
      const e = await Promise.race([this.namesKv.get(key), late]);
      return e?.value == null ? undefined : decodeNameRecord(e.value);
    } finally {
      timer?.cancel();
    }
  }

  async realms(): Promise<string[]> {
    return (await this.realmsKv.keys()).sort();
  }

  /** Every realm's record: its quota among them. */
  async realmRecords(): Promise<RealmRecord[]> {
    return (await readAll(this.realmsKv, decodeRealmRecord)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async createRealm(name: string, options: { quota?: RealmQuota } = {}): Promise<void> {
    const r = await this.#request(REALM_CREATE, { name, ...(options.quota === undefined ? {} : { quota: options.quota }) } satisfies RealmRequest);
    if (!r.ok) throw ControlError.fromWire(r.error);
  }

  /** Replaces the realm's quota (`{}`: no limits); procs already live stay, the next spawns are checked. */
  async setRealmQuota(name: string, quota: RealmQuota): Promise<void> {
    const r = await this.#request(REALM_QUOTA, { name, quota } satisfies RealmRequest);
    if (!r.ok) throw ControlError.fromWire(r.error);
  }

  async removeRealm(name: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const r = await this.#request(REALM_REMOVE, { name } satisfies RealmRequest, options.timeoutMs ?? REALM_REMOVE_TIMEOUT_MS);
    if (!r.ok) throw ControlError.fromWire(r.error);
  }

  async #request<Req, Rep>(rpc: Rpc<Req, Rep>, body: Req, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<Rep> {
    try {
      return await call(this.bus, rpc.subject, rpc.reply, body, timeoutMs);
    } catch (e) {
      const type = (e as { type?: string }).type;
      if (type === 'no-responders' || type === 'timeout') throw new ControlError('no-scheduler', `no scheduler answered on ${rpc.subject} (${type}); is the cluster running? try \`npm run cluster\``);
      if (type === 'malformed-reply') throw new ControlError('internal', (e as Error).message);
      throw e;
    }
  }

  async #waitFor(pid: string, what: string, done: (r: ProcRecord) => boolean, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<ProcRecord> {
    const watch = await this.procs.watch({ key: pid });
    const timer = this.timers.setTimeout(() => watch.stop(), timeoutMs);
    try {
      const first = await this.#table.get(pid);
      if (first === undefined) throw new ControlError('unknown-proc', `no proc ${pid}`);
      if (done(first.record)) return first.record;
      for await (const e of watch) {
        if (e.value === null) continue;
        const r = decodeProcRecord(e.value);
        if (r !== undefined && done(r)) return r;
      }
      throw new WaitTimeoutError(pid, what, timeoutMs);
    } finally {
      timer.cancel();
      watch.stop();
    }
  }
}

async function readAll<T>(kv: Kv, decode: (b: Uint8Array) => T | undefined): Promise<T[]> {
  const out: T[] = [];
  for (const k of await kv.keys()) {
    const e = await kv.get(k).catch(() => null);
    const v = e?.value == null ? undefined : decode(e.value);
    if (v !== undefined) out.push(v);
  }
  return out;
}
