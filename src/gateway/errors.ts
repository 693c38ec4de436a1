/**
 * What a failed request answers. Data-path errors carry a `type` (src/datapath/errors.ts,
 * remote-errors.ts, src/proc/data.ts); each maps to one kind, each kind to one status.
 */
export type FailureKind = 'not-found' | 'bad-request' | 'too-large' | 'body-timeout' | 'unavailable' | 'busy' | 'proc-failed' | 'deadline';

export const FAILURE_STATUS: Record<FailureKind, number> = {
  'not-found': 404,
  'bad-request': 400,
  'body-timeout': 408,
  'too-large': 413,
  unavailable: 503,
  busy: 503,
  'proc-failed': 502,
  deadline: 504,
};

/** No room or no one to take it right now: 503 with Retry-After (pool, credits, no running service, peers). */
const UNAVAILABLE = new Set(['pool-exhausted', 'credits-exhausted', 'credit-timeout', 'credit-waiters-full', 'credit-window-closed', 'calls-pending-full', 'link-backlogged', 'remote-backlogged', 'peer-unreachable', 'datapath-unavailable', 'unknown-target', 'cross-node-target', 'endpoint-registration']);
/** The proc (or its node) failed the request after taking it: 502. */
const PROC_FAILED = new Set(['remote-handler', 'peer-gone', 'endpoint-closed', 'remote-refused', 'remote-endpoint-unknown', 'remote-bad-buffer', 'descriptor-rejected', 'bad-envelope']);

export function errorStatus(e: unknown): { kind: FailureKind; status: number } {
  const type = (e as { type?: unknown } | undefined)?.type;
  let kind: FailureKind = 'proc-failed';
  if (type === 'call-timeout') kind = 'deadline';
  else if (type === 'alloc-too-large' || type === 'remote-payload-too-large') kind = 'too-large';
  else if (typeof type === 'string' && UNAVAILABLE.has(type)) kind = 'unavailable';
  else if (typeof type === 'string' && PROC_FAILED.has(type)) kind = 'proc-failed';
  return { kind, status: FAILURE_STATUS[kind] };
}
