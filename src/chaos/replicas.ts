/**
 * What each NATS server holds of a replicated bucket's stream, as its own monitoring (`/jsz`) reports
 * it, and where a record is found when each replica leads in turn. Diagnostics of the checks: a proc
 * that ran once and whose record no read finds (the scheduler scenario, three full runs) is either a
 * write the system never made or a replica that leads without it.
 */
import { BUCKET } from '../control/protocol/index.js';
import type { ProcRecord } from '../control/protocol/index.js';
import { NATS_MONITOR_PORT, type ChaosWorld } from './world.js';

/** One server's replica of a stream: its state and whom it takes for the leader. */
export interface ReplicaState {
  server: string;
  leader?: string;
  messages: number;
  firstSeq: number;
  lastSeq: number;
  deleted: number;
  subjects?: number;
}

interface Jsz {
  server_name?: string;
  account_details?: Array<{ stream_detail?: Array<{ name: string; cluster?: { leader?: string }; state?: { messages: number; first_seq: number; last_seq: number; num_deleted?: number; num_subjects?: number } }> }>;
}

const MONITOR_TIMEOUT_MS = 5_000;

/** Each reachable server's replica of `stream` (`KV_<bucket>`); a server that does not answer is left out. */
export async function streamReplicas(world: ChaosWorld, stream: string): Promise<ReplicaState[]> {
  const machines = world.machines.filter((m) => world.natsIndex(m) !== undefined);
  const states = await Promise.all(
    machines.map(async (m): Promise<ReplicaState | undefined> => {
      const r = await fetch(`http://${m.addr}:${NATS_MONITOR_PORT}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(MONITOR_TIMEOUT_MS) }).catch(() => undefined);
      const jsz = r?.ok === true ? ((await r.json().catch(() => undefined)) as Jsz | undefined) : undefined;
      const detail = jsz?.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream);
      if (detail?.state === undefined) return undefined;
      const s = detail.state;
      return {
        server: jsz?.server_name ?? world.nats.names[world.natsIndex(m)!]!,
        ...(detail.cluster?.leader === undefined ? {} : { leader: detail.cluster.leader }),
        messages: s.messages,
        firstSeq: s.first_seq,
        lastSeq: s.last_seq,
        deleted: s.num_deleted ?? 0,
        ...(s.num_subjects === undefined ? {} : { subjects: s.num_subjects }),
      };
    }),
  );
  return states.filter((s): s is ReplicaState => s !== undefined);
}

/** Replicas that disagree on what the stream holds (after the run is quiet they must not). */
export function diverged(states: readonly ReplicaState[]): boolean {
  return states.some((s) => s.messages !== states[0]!.messages || s.lastSeq !== states[0]!.lastSeq);
}

export function describeReplicas(stream: string, states: readonly ReplicaState[]): string {
  const each = states.map((s) => `${s.server}${s.leader === s.server ? ' (leader)' : ''}: ${s.messages} msgs, seq ${s.firstSeq}-${s.lastSeq}${s.deleted > 0 ? `, ${s.deleted} deleted` : ''}`);
  return `${stream} ${diverged(states) ? 'replicas DIVERGE' : 'replicas agree'}: ${each.join('; ')}`;
}

/** Replicas of the control buckets whose records the checks read. */
export async function controlReplicas(world: ChaosWorld): Promise<string[]> {
  const out: string[] = [];
  for (const bucket of [BUCKET.procs, BUCKET.live]) {
    const stream = `KV_${bucket}`;
    const states = await streamReplicas(world, stream);
    out.push(states.length === 0 ? `${stream}: no server reported it` : describeReplicas(stream, states));
  }
  return out;
}

const STEPDOWNS_MAX = 4;
const LEADER_WAIT_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Reads each of `pids` under each leader the proc table's stream can be moved to (stream leader
 * stepdowns; only after the checks, nothing else runs then): `pid: absent under n2; exited under n1`.
 * A record one replica holds and another does not is JetStream's, not the control plane's.
 */
export async function readUnderEachLeader(world: ChaosWorld, pids: readonly string[]): Promise<string[]> {
  const lead = world.bus.leadership?.();
  if (lead === undefined || pids.length === 0) return [];
  const seen = new Map<string, Map<string, string>>(pids.map((p) => [p, new Map()]));
  const read = async (leader: string): Promise<void> => {
    for (const pid of pids) {
      const got = await world.client.proc(pid).then(
        (r: ProcRecord | undefined) => (r === undefined ? 'absent' : `${r.state}${r.node === undefined ? '' : ` on ${r.node}`}`),
        (e: unknown) => `unreadable (${(e as Error).message})`,
      );
      seen.get(pid)!.set(leader, got);
    }
  };
  const leaderNow = async (): Promise<string | undefined> => {
    const deadline = Date.now() + LEADER_WAIT_MS;
    while (Date.now() < deadline) {
      const l = await lead.leaderOf(BUCKET.procs).catch(() => undefined);
      if (l !== undefined) return l;
      await sleep(200);
    }
    return undefined;
  };
  for (let i = 0; i <= STEPDOWNS_MAX; i++) {
    const l = await leaderNow();
    if (l === undefined) break;
    if (!seen.get(pids[0]!)!.has(l)) await read(l);
    if (seen.get(pids[0]!)!.size >= world.nats.names.length || i === STEPDOWNS_MAX) break;
    await lead.stepDown(BUCKET.procs).catch(() => {});
    await sleep(500);
  }
  return pids.map((pid) => `${pid}: ${[...seen.get(pid)!].map(([leader, what]) => `${what} under ${leader}`).join('; ')}`);
}
