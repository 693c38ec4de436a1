import { describe } from '../../actors/errors.js';
import { decodeNameRecord, type NameRecord } from '../../control/protocol/index.js';
import type { NodeMsg, NodeState } from './state.js';

/**
 * A proc's endpoint outlives it by this long: descriptors it wrote just before exiting are still in
 * its host's socket (the exit report travels on another channel and can overtake them), and they
 * should arrive rather than be dropped as coming from an unknown sender. Then it is unregistered and
 * everything it still holds is reclaimed. A dead host's endpoints go at once.
 */
export const ENDPOINT_LINGER_MS = 500;

// The node manager's side of the data path: endpoints that linger after their procs, and calls from the node.

export function lingerEndpoint(s: NodeState, endpoint: number): void {
  if (s.dp === undefined) return;
  if (s.lingering.length === 0) s.ctx.scheduleOnce(ENDPOINT_LINGER_MS, { type: 'dp-close' });
  s.lingering.push({ endpoint, atMs: s.ctx.ports.clock.nowMs() + ENDPOINT_LINGER_MS });
}

/** Closes, in one batch, the lingering endpoints whose time has come; the timer goes again for the rest. */
export function closeLingering(s: NodeState): void {
  const now = s.ctx.ports.clock.nowMs();
  let n = 0;
  while (n < s.lingering.length && s.lingering[n]!.atMs <= now) n++;
  const batch = s.lingering.splice(0, n).map((l) => l.endpoint);
  s.dp?.closeEndpoints(s.cfg.forgetLingering === true ? batch.slice(1) : batch);
  if (s.lingering.length > 0) s.ctx.scheduleOnce(Math.max(0, s.lingering[0]!.atMs - now), { type: 'dp-close' });
}

/** A call from the node process into a realm's data path (`sigma call`; the gateway's path). */
export function dataPathCall(s: NodeState, m: Extract<NodeMsg, { type: 'datapath-call' }>): void {
  const lookupName = async (key: string): Promise<NameRecord | undefined> => {
    const e = await s.deps.namesKv.get(key);
    const rec = e?.value == null ? undefined : decodeNameRecord(e.value);
    // The endpoint is shared with the gateway: it sees what a host of the realm sees (src/node/name-lookup.ts).
    return rec !== undefined && (rec.realm === m.realm || rec.exports?.includes(m.realm) === true) ? rec : undefined;
  };
  const api = s.dp?.local(m.realm, lookupName);
  if (api === undefined) return m.reply({ ok: false, error: { type: 'datapath-unavailable', message: `node ${s.cfg.id} has no data path for realm ${m.realm} (no host of that realm runs here)` } });
  api.call(m.target, m.payload, { timeoutMs: m.timeoutMs }).then(
    (answer) => m.reply({ ok: true, answer: new TextDecoder().decode(answer) }),
    (e: unknown) => m.reply({ ok: false, error: { type: (e as { type?: string }).type ?? 'internal', message: describe(e) } }),
  );
}
