import { BUSY_POLL_US_MAX } from '../datapath/busy-poll.js';
import type { ProcKind, Status } from '../proc/types.js';
import type { HostDataPathStats } from '../datapath/status.js';
import type { WireRefusal } from '../datapath/refusal.js';
import { isWireRefusal } from '../datapath/refusal.js';
import { nameRecord, type NameRecord } from '../control/protocol/index.js';

/**
 * Messages between a node manager and one of its proc hosts, over the fork IPC channel (JSON).
 * Decoded with `decodeToHost` / `decodeToNode`, which reject anything malformed instead of trusting it.
 */
export type ToHost =
  | { t: 'run'; pid: string; modulePath: string; args: unknown[]; realm: string; endpoint?: number }
  | { t: 'evict'; pid: string }
  /** The pool memfd and the host's data-path socket were inherited at fork, at fds `poolFd` and `socketFd`. */
  | { t: 'dp-attach'; node: string; hostEp: number; poolFd: number; socketFd: number; poolBytes: number; mode: string; crossNode?: boolean; busyPollUs?: number; homeCpu?: number }
  /** An endpoint of the realm went away: free what was sent to it, forget its name. */
  /** These endpoints left the node (batched: procs exit in bursts, one message per host per batch). */
  | { t: 'dp-gone'; endpoints: number[]; node?: string; why?: WireRefusal['type'] }
  /** A cross-node call of `endpoint` (its sequence `seq`) was refused on the way: fail it with this error. */
  | { t: 'dp-refused'; endpoint: number; seq: number; error: WireRefusal }
  | { t: 'ping'; seq: number }
  /** The host's NATS URL with its realm's credentials: sent first, over IPC, so that it is in no file or environment a proc can read. */
  | { t: 'nats'; url: string }
  /** The answer to a `lookup`: the record when the host's realm may see it. */
  | { t: 'looked-up'; seq: number; record?: NameRecord }
  | { t: 'exit' };

export type ToNode =
  | { t: 'ready'; hostId: string; address: string }
  | { t: 'started'; pid: string; kind: ProcKind; actorPath?: string }
  | { t: 'exited'; pid: string; status: Status }
  | { t: 'log'; pid: string; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'pong'; seq: number }
  | { t: 'dp-stats'; stats: HostDataPathStats }
  /** A service name (`<realm>.<name>`) for the data path: hosts read no bucket themselves. */
  | { t: 'lookup'; seq: number; key: string };

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
const isStr = (v: unknown): v is string => typeof v === 'string';
const isU31 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fff_ffff;

/** CPU numbers as sched_setaffinity takes them (CPU_SETSIZE). */
const isCpu = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 1024;
const isBusyPollUs = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= BUSY_POLL_US_MAX;

export function decodeToHost(v: unknown): ToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v['t']) {
    case 'run':
      return isStr(v['pid']) && isStr(v['modulePath']) && Array.isArray(v['args']) && isStr(v['realm']) && (v['endpoint'] === undefined || isU31(v['endpoint'])) ? (v as ToHost) : undefined;
    case 'dp-attach':
      return isStr(v['node']) && isU31(v['hostEp']) && isU31(v['poolFd']) && isU31(v['socketFd']) && Number.isSafeInteger(v['poolBytes']) && (v['poolBytes'] as number) > 0 && isStr(v['mode']) && (v['busyPollUs'] === undefined || isBusyPollUs(v['busyPollUs'])) && (v['homeCpu'] === undefined || isCpu(v['homeCpu'])) ? (v as ToHost) : undefined;
    case 'dp-gone':
      return Array.isArray(v['endpoints']) && v['endpoints'].every(isU31) && (v['node'] === undefined || isStr(v['node'])) && (v['why'] === undefined || isStr(v['why'])) ? (v as ToHost) : undefined;
    case 'dp-refused':
      return isU31(v['endpoint']) && isU31(v['seq']) && isWireRefusal(v['error']) ? (v as ToHost) : undefined;
    case 'evict':
      return isStr(v['pid']) ? (v as ToHost) : undefined;
    case 'ping':
      return typeof v['seq'] === 'number' ? (v as ToHost) : undefined;
    case 'nats':
      return isStr(v['url']) ? (v as ToHost) : undefined;
    case 'looked-up':
      return isU31(v['seq']) && (v['record'] === undefined || nameRecord(v['record']) !== undefined) ? (v as ToHost) : undefined;
    case 'exit':
      return { t: 'exit' };
    default:
      return undefined;
  }
}

/** A realm (63) and a service name (128) with the dot between. */
const NAME_KEY_CHARS_MAX = 192;

const KINDS = new Set(['ok', 'error', 'evicted', 'crashed', 'lost']);

export function decodeToNode(v: unknown): ToNode | undefined {
  if (!isObj(v)) return undefined;
  switch (v['t']) {
    case 'ready':
      return isStr(v['hostId']) && isStr(v['address']) ? (v as ToNode) : undefined;
    case 'started':
      return isStr(v['pid']) && (v['kind'] === 'function' || v['kind'] === 'service') ? (v as ToNode) : undefined;
    case 'exited': {
      const s = v['status'];
      return isStr(v['pid']) && isObj(s) && KINDS.has(s['kind'] as string) && isStr(s['message']) ? (v as ToNode) : undefined;
    }
    case 'log':
      return isStr(v['pid']) && (v['stream'] === 'stdout' || v['stream'] === 'stderr') && isStr(v['data']) ? (v as ToNode) : undefined;
    case 'pong':
      return typeof v['seq'] === 'number' ? (v as ToNode) : undefined;
    case 'lookup':
      return isU31(v['seq']) && isStr(v['key']) && v['key'].length <= NAME_KEY_CHARS_MAX ? (v as ToNode) : undefined;
    case 'dp-stats': {
      const s = v['stats'];
      return isObj(s) && isObj(s['rejected']) && typeof s['misrouted'] === 'number' ? (v as ToNode) : undefined;
    }
    default:
      return undefined;
  }
}
