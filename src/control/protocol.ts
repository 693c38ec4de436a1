import type { ProcSpec, Status } from '../proc/types.js';

/**
 * The control plane's wire: NATS subjects, KV buckets and the records stored in them. Everything a
 * process reads from the wire goes through a decoder here that rejects what is malformed.
 */

export const SUBJECT = {
  /** Request: SpawnRequest -> SpawnReply. Served by the leader scheduler only. */
  spawn: 'sigma.sched.spawn',
  /** Request from a node with spare capacity: PullRequest -> PullReply (BE procs to run). */
  pull: 'sigma.sched.pull',
  /** Publish: a node reports a proc's start or exit to the scheduler (the KV record is the truth). */
  procEvent: 'sigma.sched.event',
  /** Request: EvictRequest -> EvictReply. The scheduler forwards to the node. */
  evict: 'sigma.sched.evict',
  realm: { create: 'sigma.realm.create', remove: 'sigma.realm.remove' },
  /** Per node: run and evict requests addressed to one node manager. */
  node: (id: string) => `sigma.node.${id}`,
  /** Per node: fire-and-forget notes from the scheduler (`created`, `cancel`); losing one costs a read. */
  nodeNote: (id: string) => `sigma.node.${id}.note`,
  /** Publish { node, endpoints }: data-path endpoints that remote senders reached have closed (src/node/dp-cross.ts). */
  dpGone: 'sigma.dp.gone',
  /** Actor frames for the system at `address` (the NATS Transport of the actor kernel). */
  actor: (address: string) => `sigma.actor.${address}`,
} as const;

export const BUCKET = {
  /** node id -> NodeRecord; bucket TTL makes a silent node disappear. */
  nodes: 'sigma_nodes',
  /** "scheduler" -> LeaseRecord; bucket TTL is the lease; revisions fence. */
  leader: 'sigma_leader',
  /** pid -> ProcRecord: the proc table, durable across node crashes. */
  procs: 'sigma_procs',
  /** realm -> RealmRecord */
  realms: 'sigma_realms',
  /** "<realm>.<name>" -> NameRecord, leased to the owning proc's life. */
  names: 'sigma_names',
} as const;

export interface NodeRecord {
  id: string;
  mcpu: number;
  memMb: number;
  /** Actor system address of the node process. */
  address: string;
  startedAtMs: number;
  heartbeatSeq: number;
  /** Where its node-to-node data-path channel listens, and its endpoint-id range (src/node/dp-ids.ts). */
  datapath?: DataPathAddress;
}

export interface DataPathAddress {
  host: string;
  port: number;
  /** Node index: the high bits of every endpoint id this node hands out. */
  index: number;
}

/** A heartbeat's data-path address, if it carries a well-formed one. */
export function nodeDataPathAddress(rec: NodeRecord): DataPathAddress | undefined {
  const d = (rec as { datapath?: unknown }).datapath;
  if (!isObj(d)) return undefined;
  const { host, port, index } = d as Record<string, unknown>;
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 1 || index > 1023) return undefined;
  return { host, port, index };
}

export interface LeaseRecord {
  holder: string;
  /** Incremented by each new leader; with the KV revision it fences a deposed leader's writes. */
  term: number;
}

export type ProcState = 'queued' | 'starting' | 'running' | 'exited';

export interface ProcRecord {
  pid: string;
  spec: ProcSpec;
  state: ProcState;
  node?: string;
  /** Service procs: the actor path clients use. */
  actorPath?: string;
  /** Set once, when state becomes exited. */
  status?: Status;
  /** How many times this service was respawned. */
  restarts: number;
  /** When the recent respawns happened (scheduler clock), for the restart intensity window. */
  restartTimesMs?: number[];
  /** Term of the scheduler that accepted the spawn. */
  term: number;
  createdAtMs: number;
}

export interface RealmRecord {
  name: string;
  state: 'active' | 'removing';
  createdAtMs: number;
}

export interface NameRecord {
  realm: string;
  name: string;
  pid: string;
  actorPath: string;
  /** The proc's data-path endpoint and the node it lives on (absent when its node has no data path). */
  node?: string;
  endpoint?: number;
  /** Other realms allowed to call it (`<realm>/<name>` from there): the proc's spec.exports. */
  exports?: string[];
}

/**
 * Where a data-path target name is registered, seen from a proc of `fromRealm`: `name` is in the proc's
 * own realm, `realm/name` in another realm (reachable when that realm exported it: NameRecord.exports).
 */
export function nameKey(fromRealm: string, target: string): { realm: string; name: string; key: string } {
  const slash = target.indexOf('/');
  const realm = slash < 0 ? fromRealm : target.slice(0, slash);
  const name = target.slice(slash + 1);
  return { realm, name, key: `${realm}.${name}` };
}

export type SpawnReply = { ok: true; pid: string } | { ok: false; error: WireError };
export interface WireError {
  type: string;
  message: string;
  field?: string;
}

export interface PullRequest {
  node: string;
  freeMcpu: number;
  freeMemMb: number;
  max: number;
}

export interface RunOrder {
  pid: string;
  spec: ProcSpec;
  modulePath: string;
  /** The record as the scheduler last wrote it and its revision: the node's first write needs no read. */
  record?: ProcRecord;
  revision?: number;
  /**
   * The fast path: the scheduler sent this order in parallel with creating the record, so the record
   * may not exist yet. The node starts the proc at once but writes nothing for it until a `created`
   * note gives the revision (or, if that note is lost, it reads the record back once it exists).
   */
  pendingCreate?: boolean;
}

export type NodeRequest =
  | { op: 'run'; order: RunOrder }
  | { op: 'evict'; pid: string; graceMs: number }
  /** Fire-and-forget note: the record of a `pendingCreate` order is durable at this revision. */
  | { op: 'created'; pid: string; revision: number }
  /** Fire-and-forget note: the record of a `pendingCreate` order could not be written; stop the proc, record nothing. */
  | { op: 'cancel'; pid: string }
  | { op: 'datapath-status' }
  | { op: 'realm-removed'; realm: string }
  | { op: 'datapath-call'; realm: string; target: string; payload: string; timeoutMs: number };

export type ProcEvent = { type: 'started'; pid: string; node: string } | { type: 'exited'; pid: string; node: string; status: Status };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encode(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

/** Parses JSON bytes; undefined when they are not JSON. Shape checks follow in the typed decoders. */
export function decodeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function decodeProcRecord(bytes: Uint8Array): ProcRecord | undefined {
  const v = decodeJson(bytes);
  if (!isObj(v) || typeof v['pid'] !== 'string' || !isObj(v['spec'])) return undefined;
  if (!['queued', 'starting', 'running', 'exited'].includes(v['state'] as string)) return undefined;
  return v as unknown as ProcRecord;
}

export function decodeNodeRecord(bytes: Uint8Array): NodeRecord | undefined {
  const v = decodeJson(bytes);
  if (!isObj(v) || typeof v['id'] !== 'string' || typeof v['mcpu'] !== 'number' || typeof v['memMb'] !== 'number') return undefined;
  return v as unknown as NodeRecord;
}

export function decodeProcEvent(bytes: Uint8Array): ProcEvent | undefined {
  const v = decodeJson(bytes);
  if (!isObj(v) || typeof v['pid'] !== 'string' || typeof v['node'] !== 'string') return undefined;
  if (v['type'] === 'started') return v as unknown as ProcEvent;
  if (v['type'] === 'exited' && isObj(v['status']) && typeof v['status']['kind'] === 'string') return v as unknown as ProcEvent;
  return undefined;
}
