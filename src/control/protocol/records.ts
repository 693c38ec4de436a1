import type { ProcSpec, Status } from '../../proc/types.js';
import { fromBytes, isInt, isNum, isObj, isStr, isStrArray, type Decoder } from './wire.js';

/** The JetStream KV buckets of the control plane and the records stored in them. */
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
  /**
   * pid -> nothing, for every proc not yet exited (src/control/proc-table.ts): what a new scheduler
   * reads instead of the whole table, so that a failover does not grow with history.
   */
  live: 'sigma_live',
} as const;

export interface NodeRecord {
  id: string;
  mcpu: number;
  memMb: number;
  /** Actor system address of the node process. */
  address: string;
  startedAtMs: number;
  heartbeatSeq: number;
  /** Best-effort procs it runs at once: the scheduler places BE work against these (there is no pull). */
  beSlots: number;
  /** Present (false) on a node that runs no procs (a control-plane node): the scheduler places nothing there. */
  procs?: false;
  /** Where its node-to-node data-path channel listens, and its endpoint-id range (src/node/datapath/ids.ts). */
  datapath?: DataPathAddress;
  /** Whether its proc hosts are sandboxed, and each protection that is missing where they are not. */
  isolation?: NodeIsolation;
}

export interface NodeIsolation {
  sandboxed: boolean;
  missing: string[];
}

export interface DataPathAddress {
  host: string;
  port: number;
  /** Node index: the high bits of every endpoint id this node hands out. */
  index: number;
}

/** Host names are at most this long (RFC 1035). */
const HOST_NAME_CHARS_MAX = 255;
/** Node indexes fit the endpoint id's high bits (src/node/datapath/ids.ts). */
const NODE_INDEX_MAX = 1023;
const PORT_MAX = 65_535;

/** A heartbeat's data-path address, if it carries a well-formed one. */
export function nodeDataPathAddress(rec: NodeRecord): DataPathAddress | undefined {
  const d = (rec as { datapath?: unknown }).datapath;
  if (!isObj(d)) return undefined;
  const { host, port, index } = d;
  if (!isStr(host) || host.length === 0 || host.length > HOST_NAME_CHARS_MAX) return undefined;
  if (!isInt(port) || port < 1 || port > PORT_MAX) return undefined;
  if (!isInt(index) || index < 1 || index > NODE_INDEX_MAX) return undefined;
  return { host, port, index };
}

export interface LeaseRecord {
  holder: string;
  /** Incremented by each new leader; with the KV revision it fences a deposed leader's writes. */
  term: number;
}

export type ProcState = 'queued' | 'starting' | 'running' | 'exited';
const PROC_STATES: readonly string[] = ['queued', 'starting', 'running', 'exited'] satisfies ProcState[];

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
  /** A deployed program: the bundle (content hash) and version resolved at spawn; its restarts keep it. */
  program?: DeployedProgram;
  /** Term of the scheduler that accepted the spawn. */
  term: number;
  createdAtMs: number;
}

/** A deployed program's bundle as a spawn resolved it (src/programs/store.ts). */
export interface DeployedProgram {
  hash: string;
  version: number;
  /**
   * Where the bundle's one chunk is in the object store (ObjectLocation.chunk): the node reads it in
   * one round trip instead of two. A hint only: the bundle is checked against `hash` either way.
   */
  chunk?: string;
}

export interface RealmRecord {
  name: string;
  state: 'active' | 'removing';
  createdAtMs: number;
  quota?: RealmQuota;
}

/**
 * What a realm may hold at once (an absent field: no limit): live procs (accepted, not yet exited,
 * queued ones included), and the mcpu and memory its LC procs reserve; a spawn past one is refused
 * with `quota-exceeded`, naming it. `poolMb` caps its shared-memory pool on each node (below the
 * node's own pool size; it applies to pools made after it is set, at least 1 MiB); `diskMb` sizes each
 * of its hosts' scratch directory (default HOST_SCRATCH_MB_DEFAULT), for hosts started after it is set.
 */
export interface RealmQuota {
  procs?: number;
  mcpu?: number;
  memMb?: number;
  poolMb?: number;
  diskMb?: number;
}
export const QUOTA_FIELDS = ['procs', 'mcpu', 'memMb', 'poolMb', 'diskMb'] as const;
/** Larger than any cluster: a quota is a whole number up to this. */
export const QUOTA_VALUE_MAX = 2 ** 31 - 1;

export const realmQuota: Decoder<RealmQuota> = (v) => {
  if (!isObj(v) || Object.keys(v).some((k) => !(QUOTA_FIELDS as readonly string[]).includes(k))) return undefined;
  return QUOTA_FIELDS.every((f) => v[f] === undefined || (Number.isSafeInteger(v[f]) && (v[f] as number) >= 0 && (v[f] as number) <= QUOTA_VALUE_MAX)) ? (v as RealmQuota) : undefined;
};

export const realmRecord: Decoder<RealmRecord> = (v) => (isObj(v) && isStr(v['name']) && isNum(v['createdAtMs']) && (v['quota'] === undefined || realmQuota(v['quota']) !== undefined) ? (v as unknown as RealmRecord) : undefined);

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

export const isStatus = (v: unknown): v is Status => isObj(v) && isStr(v['kind']) && isStr(v['message']);

export const procRecord: Decoder<ProcRecord> = (v) => {
  if (!isObj(v) || !isStr(v['pid']) || !isObj(v['spec']) || !PROC_STATES.includes(v['state'] as string)) return undefined;
  if (v['status'] !== undefined && !isStatus(v['status'])) return undefined;
  return v as unknown as ProcRecord;
};

export const nodeRecord: Decoder<NodeRecord> = (v) => (isObj(v) && isStr(v['id']) && isNum(v['mcpu']) && isNum(v['memMb']) && isInt(v['beSlots']) && v['beSlots'] >= 0 ? (v as unknown as NodeRecord) : undefined);

export const leaseRecord: Decoder<LeaseRecord> = (v) => (isObj(v) && isStr(v['holder']) && isInt(v['term']) ? (v as unknown as LeaseRecord) : undefined);

export const nameRecord: Decoder<NameRecord> = (v) => {
  if (!isObj(v) || !isStr(v['realm']) || !isStr(v['name']) || !isStr(v['pid']) || !isStr(v['actorPath'])) return undefined;
  if ((v['node'] !== undefined && !isStr(v['node'])) || (v['endpoint'] !== undefined && !isInt(v['endpoint']))) return undefined;
  if (v['exports'] !== undefined && !isStrArray(v['exports'])) return undefined;
  return v as unknown as NameRecord;
};

export const decodeProcRecord = fromBytes(procRecord);
export const decodeNodeRecord = fromBytes(nodeRecord);
export const decodeLeaseRecord = fromBytes(leaseRecord);
export const decodeNameRecord = fromBytes(nameRecord);
export const decodeRealmRecord = fromBytes(realmRecord);
