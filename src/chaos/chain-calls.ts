/**
 * The datapath scenario's calls and how each is judged (pure: ./chain.ts makes and records them on a
 * live chain). A call must end with the right answer or a typed error, within its bound; a call the
 * head's node left unanswered outside the fault hung there.
 */

/** Stages in the chain: each adds 1 to every byte. */
export const CHAIN_STAGES = 3;

/**
 * The error types a data-path call may end with (src/datapath/errors.ts, remote-errors.ts,
 * src/proc/data.ts, the client's; `timeout`: the client's read of the head's name record, a KV get).
 */
export const TYPED_CALL_ERRORS: ReadonlySet<string> = new Set([
  'pool-exhausted', 'alloc-too-large', 'invalid-argument', 'descriptor-rejected', 'credits-exhausted', 'credit-timeout',
  'credit-waiters-full', 'credit-window-closed', 'endpoint-registration', 'link-backlogged', 'endpoint-closed',
  'peer-unreachable', 'peer-gone', 'remote-payload-too-large', 'remote-backlogged', 'remote-endpoint-unknown', 'remote-refused',
  'remote-bad-buffer', 'datapath-unavailable', 'unknown-target', 'cross-node-target', 'call-timeout', 'remote-handler',
  'calls-pending-full', 'buffer-consumed', 'node-unreachable', 'timeout',
]);

/** What the chain answers: every byte plus one per stage (payloads are [0-9a-z], so it stays ASCII). */
export const chainAnswer = (payload: string): string => String.fromCharCode(...[...payload].map((c) => (c.charCodeAt(0) + CHAIN_STAGES) & 0xff));

export interface ChainCall {
  readonly caller: number;
  readonly payload: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly answer?: string;
  /** The error's type ('untyped' without one) and message. */
  readonly error?: { type: string; message: string };
}

/** Whether a call got the chain's answer to its payload. */
export const right = (c: ChainCall): boolean => c.answer === chainAnswer(c.payload);

/** A call the client gave up on because the head's node did not answer in time (its own call did not end by its timeout). */
const unanswered = (c: ChainCall): boolean => c.error?.type === 'node-unreachable' && /timeout/.test(c.error.message);

/**
 * Every call judged: typed errors counted by type; a violation for a wrong answer, an untyped error, a
 * call longer than `boundMs`, or one its head's node left unanswered outside the fault (ended before
 * the kill, or began after `faultEndMs`).
 */
export function judgeCalls(calls: readonly ChainCall[], o: { killMs: number; faultEndMs: number; boundMs: number }): { errors: Record<string, number>; violations: string[] } {
  const errors: Record<string, number> = {};
  const violations: string[] = [];
  for (const c of calls) {
    const took = c.endMs - c.startMs;
    if (took > o.boundMs) violations.push(`caller ${c.caller} ${c.payload}: ${took} ms, over its ${o.boundMs} ms bound (${c.error === undefined ? 'answered' : `${c.error.type}: ${c.error.message}`})`);
    if (unanswered(c) && (c.endMs < o.killMs || c.startMs > o.faultEndMs)) violations.push(`caller ${c.caller} ${c.payload}: hung outside the fault (${c.error!.message})`);
    if (c.error !== undefined) {
      errors[c.error.type] = (errors[c.error.type] ?? 0) + 1;
      if (!TYPED_CALL_ERRORS.has(c.error.type)) violations.push(`caller ${c.caller} ${c.payload}: untyped error ${c.error.type}: ${c.error.message}`);
    } else if (!right(c)) violations.push(`caller ${c.caller} ${c.payload}: wrong answer ${JSON.stringify(c.answer)}, not ${JSON.stringify(chainAnswer(c.payload))}`);
  }
  return { errors, violations };
}

/** Each error type with its count, the longest such call, and the first and last one's messages (what tells why). */
export function describeErrors(calls: readonly ChainCall[]): string[] {
  const types = [...new Set(calls.flatMap((c) => (c.error === undefined ? [] : [c.error.type])))];
  return types.map((t) => {
    const of = calls.filter((c) => c.error?.type === t);
    const first = of[0]!.error!.message;
    const last = of[of.length - 1]!.error!.message;
    return `${t} ${of.length} (up to ${Math.max(...of.map((c) => c.endMs - c.startMs))} ms; first: ${first}${last !== first ? `; last: ${last}` : ''})`;
  });
}
