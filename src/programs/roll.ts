/**
 * Rolls a named service to its program's current version without a gap in its name: the new proc starts
 * with the old one's spec, takes the name (a name record names its newest proc; the old one's exit does
 * not remove a successor's), and only then is the old proc evicted.
 */
import type { SigmaClient } from '../client/client.js';
import type { NameRecord } from '../control/protocol/index.js';
import { DeployError } from './errors.js';
import { checkName } from './store.js';

export const ROLL_TIMEOUT_MS_DEFAULT = 30_000;
const ROLL_POLL_MS = 20;

export interface RollResult {
  realm: string;
  name: string;
  from: string;
  to: string;
}

export async function rollService(client: SigmaClient, realm: string, name: string, o: { timeoutMs?: number; graceMs?: number } = {}): Promise<RollResult> {
  checkName('realm', realm);
  const timeoutMs = o.timeoutMs ?? ROLL_TIMEOUT_MS_DEFAULT;
  const named = (await client.names(realm)).find((n) => n.name === name);
  if (named === undefined) throw new DeployError('unknown-program', `realm ${realm} has no service named "${name}"`);
  const old = await client.proc(named.pid);
  if (old === undefined || old.state === 'exited') throw new DeployError('unknown-program', `the proc ${named.pid} behind "${name}" is gone`);
  const next = await client.spawn({ ...old.spec });
  // The name moves once the new proc is up (with its endpoint, if the old one had one).
  const moved = (n: NameRecord | undefined): boolean => n?.pid === next && (named.endpoint === undefined || n.endpoint !== undefined);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await client.proc(next);
    if (st?.state === 'exited') throw new DeployError('load', `the new proc ${next} ended ${st.status?.kind} before it took the name: ${st.status?.message}; ${named.pid} keeps serving`);
    if (moved((await client.names(realm)).find((n) => n.name === name))) break;
    if (Date.now() > deadline) {
      await client.evict(next).catch(() => {});
      throw new DeployError('load', `the new proc ${next} did not take the name within ${timeoutMs} ms; ${named.pid} keeps serving`);
    }
    await new Promise((r) => setTimeout(r, ROLL_POLL_MS));
  }
  await client.evict(named.pid, o.graceMs === undefined ? {} : { graceMs: o.graceMs });
  return { realm, name, from: named.pid, to: next };
}
