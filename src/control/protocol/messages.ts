import type { DataPathStatus } from '../../datapath/status.js';
import type { SpecInput } from '../../proc/spec.js';
import type { ProcSpec, Status } from '../../proc/types.js';
import { isStatus, procRecord, realmQuota, type DeployedProgram, type ProcRecord, type RealmQuota } from './records.js';
import { decodeResult, isInt, isNum, isObj, isStr, type Decoder, type WireError } from './wire.js';

/** Error types on the control subjects (ControlError in src/control/errors.ts carries them to callers). */
export const CONTROL_ERROR_TYPES = ['bad-request', 'bad-spec', 'unknown-realm', 'unknown-program', 'never-fits', 'queue-full', 'no-scheduler', 'unknown-proc', 'realm-exists', 'no-datapath', 'quota-exceeded', 'internal'] as const;
export type ControlErrorType = (typeof CONTROL_ERROR_TYPES)[number];

/**
 * A spawn request is a spec as the client wrote it (the scheduler's parseSpec checks every field), with
 * an idempotency key: a request that repeats a key gets the first one's pid, from this scheduler or its
 * successor. `fresh`: the client made the key for this call and this is its first attempt, so no record
 * can have it yet (the order may go before the record is durable).
 * `timeLeftMs`: what is left of the caller's deadline as it sends this attempt. Past it (less a margin,
 * by the scheduler's clock from the request's arrival) nothing is created: the caller has reported the
 * spawn failed, and a record made later would run a proc it does not know of.
 */
export type SpawnRequest = SpecInput & { idempotencyKey?: string; fresh?: boolean; timeLeftMs?: number };
/** A keyed spawn's pid: the same key in the same realm is the same proc. `k_` keeps keyed pids apart from the scheduler's own `<term>-<seq>` ones (base 36, no `_`). */
export const keyedPid = (realm: string, key: string): string => `${realm}.k_${key}`;
export type SpawnReply = { ok: true; pid: string } | { ok: false; error: WireError };

export interface EvictRequest {
  pid: string;
  /** Absent: the scheduler's default grace. */
  graceMs?: number;
}

export interface RealmRequest {
  name: string;
  /** At creation, and for REALM_QUOTA. */
  quota?: RealmQuota;
}

/**
 * `unrecorded`: the table does not have this exit yet and the scheduler is to write it (a node that
 * restarted reports the procs of its earlier incarnation so: a scheduler that finishes them applies
 * their restart policy, which an exit it only heard of after the table had it would not; a node that
 * gave up waiting for an ordered proc's record reports it so, with `term`, the order's scheduler term).
 */
export type ProcEvent = { type: 'started'; pid: string; node: string } | { type: 'exited'; pid: string; node: string; status: Status; unrecorded?: boolean; term?: number };

/** Data-path endpoints of `node` that remote senders reached have closed (src/node/datapath/cross.ts). */
export interface DataPathGone {
  node: string;
  endpoints: number[];
}

export interface RunOrder {
  pid: string;
  spec: ProcSpec;
  modulePath: string;
  /** A deployed program: the node fetches the bundle (cached by hash) and runs it instead of modulePath. */
  program?: DeployedProgram;
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
  /** `term`: the scheduler's whose create failed; a node holding that pid from another term's order keeps it. */
  | { op: 'cancel'; pid: string; term?: number }
  | { op: 'datapath-status' }
  | { op: 'realm-removed'; realm: string }
  | { op: 'datapath-call'; realm: string; target: string; payload: string; timeoutMs: number };

export type DataPathStatusReply = { ok: true; status: DataPathStatus } | { ok: false; error: WireError };
export type DataPathCallReply = { ok: true; answer: string } | { ok: false; error: WireError };

/** Most endpoints one DataPathGone may name (a node's whole range). */
export const GONE_ENDPOINTS_MAX = 65_536;

const cast = <T>(ok: boolean, v: unknown): T | undefined => (ok ? (v as T) : undefined);

export const spawnRequest: Decoder<SpawnRequest> = (v) => cast(isObj(v), v);
export const evictRequest: Decoder<EvictRequest> = (v) => cast(isObj(v) && isStr(v['pid']) && (v['graceMs'] === undefined || isNum(v['graceMs'])), v);
export const realmRequest: Decoder<RealmRequest> = (v) => cast(isObj(v) && isStr(v['name']) && (v['quota'] === undefined || realmQuota(v['quota']) !== undefined), v);
export const procEvent: Decoder<ProcEvent> = (v) => {
  if (!isObj(v) || !isStr(v['pid']) || !isStr(v['node'])) return undefined;
  return cast(v['type'] === 'started' || (v['type'] === 'exited' && isStatus(v['status']) && (v['term'] === undefined || isInt(v['term']))), v);
};
export const dataPathGone: Decoder<DataPathGone> = (v) =>
  cast(isObj(v) && isStr(v['node']) && Array.isArray(v['endpoints']) && v['endpoints'].length <= GONE_ENDPOINTS_MAX && v['endpoints'].every(isInt), v);

const runOrder = (v: unknown): boolean =>
  isObj(v) && isStr(v['pid']) && isObj(v['spec']) && isStr(v['modulePath']) && (v['program'] === undefined || (isObj(v['program']) && isStr(v['program']['hash']) && isInt(v['program']['version']) && (v['program']['chunk'] === undefined || isStr(v['program']['chunk'])))) && (v['record'] === undefined || procRecord(v['record']) !== undefined) && (v['revision'] === undefined || isInt(v['revision']));

export const nodeRequest: Decoder<NodeRequest> = (v) => {
  if (!isObj(v)) return undefined;
  switch (v['op']) {
    case 'run':
      return cast(runOrder(v['order']), v);
    case 'evict':
      return cast(isStr(v['pid']) && isNum(v['graceMs']), v);
    case 'created':
      return cast(isStr(v['pid']) && isInt(v['revision']), v);
    case 'cancel':
      return cast(isStr(v['pid']) && (v['term'] === undefined || isInt(v['term'])), v);
    case 'datapath-status':
      return v as NodeRequest;
    case 'realm-removed':
      return cast(isStr(v['realm']), v);
    case 'datapath-call':
      return cast(isStr(v['realm']) && isStr(v['target']) && isStr(v['payload']) && isNum(v['timeoutMs']), v);
    default:
      return undefined;
  }
};

export const spawnReply = decodeResult<{ ok: true; pid: string }>((v) => isStr(v['pid']));
export const dataPathStatusReply = decodeResult<{ ok: true; status: DataPathStatus }>((v) => isObj(v['status']) && isStr(v['status']['mode']));
export const dataPathCallReply = decodeResult<{ ok: true; answer: string }>((v) => isStr(v['answer']));
