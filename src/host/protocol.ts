import type { ProcKind, Status } from '../proc/types.js';

/**
 * Messages between a node manager and one of its proc hosts, over the fork IPC channel (JSON).
 * Decoded with `decodeToHost` / `decodeToNode`, which reject anything malformed instead of trusting it.
 */
export type ToHost =
  | { t: 'run'; pid: string; modulePath: string; args: unknown[]; realm: string }
  | { t: 'evict'; pid: string }
  | { t: 'ping'; seq: number }
  | { t: 'exit' };

export type ToNode =
  | { t: 'ready'; hostId: string; address: string }
  | { t: 'started'; pid: string; kind: ProcKind; actorPath?: string }
  | { t: 'exited'; pid: string; status: Status }
  | { t: 'log'; pid: string; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'pong'; seq: number };

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
const isStr = (v: unknown): v is string => typeof v === 'string';

export function decodeToHost(v: unknown): ToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v['t']) {
    case 'run':
      return isStr(v['pid']) && isStr(v['modulePath']) && Array.isArray(v['args']) && isStr(v['realm']) ? (v as ToHost) : undefined;
    case 'evict':
      return isStr(v['pid']) ? (v as ToHost) : undefined;
    case 'ping':
      return typeof v['seq'] === 'number' ? (v as ToHost) : undefined;
    case 'exit':
      return { t: 'exit' };
    default:
      return undefined;
  }
}

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
    default:
      return undefined;
  }
}
