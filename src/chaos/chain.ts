/**
 * The datapath scenario's fault: a chain of `stage` services (stage0 -> stage1 -> stage2, each on its
 * own machine, each adding 1 to every byte and forwarding the same buffer over the node-to-node
 * channel; the last answers the caller) called through the data path by several callers while the
 * machine of one stage dies (its node, and its NATS server if it has one: kill -9). Every call is
 * recorded: it must end with the right answer or a typed error, within its bound; the chain must answer
 * again afterwards.
 * Harness code: real time.
 */
import { CALL_REPLY_SLACK_MS } from '../client/client.js';
import { LOCAL_FIRST_BE_MAX } from '../control/scheduler/placing.js';
import type { NameRecord } from '../control/protocol/index.js';
import type { SeededRandom } from '../ports/random.js';
import type { LabMachine } from './lab.js';
import { SPARE_REALM, type ChaosWorld } from './world.js';
import { CHAIN_STAGES, describeErrors, judgeCalls, right, type ChainCall } from './chain-calls.js';

export const CHAIN_CALLERS = 4;
/** Each caller's pause between two calls, and the bound of one call (the node's own call timeout). */
export const CHAIN_CALL_EVERY_MS = 50;
export const CHAIN_CALL_TIMEOUT_MS = 2_000;
/** A call that took longer than its timeout, the client's reply slack and this, hung. */
export const CHAIN_HANG_SLACK_MS = 1_000;
/** Spawns of one stage until it lands on a machine no other stage uses (placement is the scheduler's). */
export const CHAIN_PLACE_ATTEMPTS_MAX = 20;
/** Bound on the chain answering (at first, and after the fault), and on a stage's name record. */
export const CHAIN_WAIT_MS = 60_000;
/** Calls flowing across the machines before the fault. */
export const CHAIN_BEFORE_FAULT_MS = 2_000;
/** A call made this long after the kill no longer reaches the dead stage (kill -9 is at once; this is slack). */
export const CHAIN_KILL_SETTLE_MS = 200;
/** After the machine is back and the chain answers again, this long for NATS routes and peers to settle. */
export const CHAIN_REJOIN_MS = 5_000;
/** After the machine is back and the chain answers, this many calls in a row must be right. */
export const CHAIN_STEADY_CALLS = 10;
const POLL_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const stageName = (i: number): string => `stage${i}`;
/** One call of the chain's head, by name, through the data path of the node it runs on. */
async function callChain(world: ChaosWorld, caller: number, payload: string): Promise<ChainCall> {
  const startMs = Date.now();
  try {
    const answer = await world.client.dataPathCall(stageName(0), payload, { realm: SPARE_REALM, timeoutMs: CHAIN_CALL_TIMEOUT_MS });
    return { caller, payload, startMs, endMs: Date.now(), answer };
  } catch (e) {
    return { caller, payload, startMs, endMs: Date.now(), error: { type: (e as { type?: string }).type ?? 'untyped', message: (e as Error).message } };
  }
}

/** The node a stage's name record points at once `pid` holds it (its endpoint registered). */
async function nodeOfStage(world: ChaosWorld, name: string, pid: string): Promise<string> {
  const deadline = Date.now() + CHAIN_WAIT_MS;
  while (Date.now() < deadline) {
    const rec = (await world.client.names(SPARE_REALM).catch(() => [])).find((r) => r.name === name);
    if (rec?.pid === pid && rec.node !== undefined) return rec.node;
    await sleep(POLL_MS);
  }
  throw new Error(`stage ${name} (${pid}) had no data-path endpoint within ${CHAIN_WAIT_MS} ms`);
}

/** Spawns a stage until it runs on a node none of `taken` is (an unwanted one is evicted first). */
async function placeStage(world: ChaosWorld, i: number, taken: ReadonlySet<string>): Promise<string> {
  const spec = { program: 'stage', name: stageName(i), args: i + 1 < CHAIN_STAGES ? [stageName(i + 1)] : [], realm: SPARE_REALM, restart: 'always' as const };
  const landed: string[] = [];
  for (let attempt = 1; attempt <= CHAIN_PLACE_ATTEMPTS_MAX; attempt++) {
    const pid = await world.client.spawn(spec);
    const node = await nodeOfStage(world, spec.name, pid);
    if (!taken.has(node)) return node;
    landed.push(world.machineOf(node).name);
    await world.client.evict(pid);
    await world.client.waitExit(pid, { timeoutMs: CHAIN_WAIT_MS });
  }
  throw new Error(`stage ${spec.name} was placed beside another stage ${CHAIN_PLACE_ATTEMPTS_MAX} times (on ${landed.join(' ')})`);
}

/** Sleepers on `node` (spawned until `count` of them run there; any that land elsewhere are evicted). */
async function occupy(world: ChaosWorld, node: string, count: number): Promise<string[]> {
  const held: string[] = [];
  for (let attempt = 1; held.length < count; attempt++) {
    if (attempt > CHAIN_PLACE_ATTEMPTS_MAX) throw new Error(`only ${held.length} of ${count} sleepers landed on the scheduler's node ${node}`);
    const pid = await world.client.spawn({ program: 'sleep', realm: SPARE_REALM });
    const at = (await world.client.waitStart(pid, { timeoutMs: CHAIN_WAIT_MS })).node;
    if (at === node) held.push(pid);
    else await world.client.evict(pid).then(() => world.client.waitExit(pid, { timeoutMs: CHAIN_WAIT_MS }));
  }
  return held;
}

export interface Chain {
  /** Node of each stage, stage0 first. */
  readonly nodes: readonly string[];
  /** Every call so far. */
  readonly calls: readonly ChainCall[];
  stop(): Promise<void>;
}

/**
 * The stages, each on its own machine (last one first: each names the next), answering; then the
 * callers. Made on a quiet cluster (before the storm), where BE placement is plain: up to
 * LOCAL_FIRST_BE_MAX procs on the scheduler's own node first, then the least loaded node. So while two
 * stages are placed, sleepers fill the scheduler's node (if it runs procs); the last stage, placed once
 * they are gone, lands there. (Placed during the storm, a stage took the scheduler's node or the least
 * loaded one by the storm's chance, and a run gave up after 20 tries.)
 */
export async function startChain(world: ChaosWorld, log: (line: string) => void): Promise<Chain> {
  const holder = await world.leader();
  const local = holder !== undefined && world.config.nodes.some((n) => n.id === holder && n.procs) ? holder : undefined;
  const nodes: string[] = [];
  const ballast = local === undefined ? [] : await occupy(world, local, LOCAL_FIRST_BE_MAX);
  try {
    for (let i = CHAIN_STAGES - 1; i >= 1; i--) nodes.unshift(await placeStage(world, i, new Set([...nodes, ...(local === undefined ? [] : [local])])));
  } finally {
    await Promise.all(ballast.map((pid) => world.client.evict(pid).then(() => world.client.waitExit(pid, { timeoutMs: CHAIN_WAIT_MS }))));
  }
  nodes.unshift(await placeStage(world, 0, new Set(nodes)));
  log(`chain ${nodes.map((n, i) => `${stageName(i)}@${world.machineOf(n).name}`).join(' -> ')}`);
  if ((await untilRight(world, Date.now() + CHAIN_WAIT_MS)) === undefined) throw new Error(`the chain did not answer within ${CHAIN_WAIT_MS} ms of its start`);
  const calls: ChainCall[] = [];
  let stopped = false;
  const callers = Array.from({ length: CHAIN_CALLERS }, async (_, caller) => {
    for (let seq = 0; !stopped; seq++) {
      calls.push(await callChain(world, caller, `c${caller}s${seq.toString(36)}`));
      await sleep(CHAIN_CALL_EVERY_MS);
    }
  });
  return {
    nodes,
    calls,
    async stop() {
      stopped = true;
      await Promise.all(callers);
    },
  };
}

/** Calls until one is right (the time it ended) or the deadline (undefined). */
async function untilRight(world: ChaosWorld, deadlineMs: number): Promise<number | undefined> {
  for (let seq = 0; Date.now() < deadlineMs; seq++) {
    const c = await callChain(world, -1, `probe${seq.toString(36)}`);
    if (right(c)) return c.endMs;
    await sleep(POLL_MS);
  }
  return undefined;
}

/** CHAIN_STEADY_CALLS right answers in a row before the deadline: whether they came, and what failed meanwhile. */
async function untilSteady(world: ChaosWorld, deadlineMs: number): Promise<{ steady: boolean; failed: string[] }> {
  const failed: string[] = [];
  let inRow = 0;
  for (let seq = 0; inRow < CHAIN_STEADY_CALLS && Date.now() < deadlineMs; seq++) {
    const c = await callChain(world, -1, `steady${seq.toString(36)}`);
    inRow = right(c) ? inRow + 1 : 0;
    if (!right(c)) failed.push(c.error === undefined ? `answer ${JSON.stringify(c.answer)}` : `${c.error.type} (${c.error.message})`);
  }
  return { steady: inRow >= CHAIN_STEADY_CALLS, failed };
}

/**
 * The machine running stage `seed mod stages`. Not a draw of the seeded generator: its first draws
 * hardly depend on the seed (SeededRandom, pure-rand's xoroshiro128+: the first `next()` is above 0.9999 for
 * seeds 1 to 1000), so every run killed stage2's machine.
 */
export function chainVictim(world: ChaosWorld, chain: Chain, rng: SeededRandom): { stage: number; machine: LabMachine } {
  const stage = rng.seed % chain.nodes.length;
  return { stage, machine: world.machineOf(chain.nodes[stage]!) };
}

export interface ChainOutcome {
  calls: number;
  /** Calls that ended with a typed error (allowed), by type. */
  errors: Record<string, number>;
  /** Wrong answers, untyped errors, calls past their bound, a chain not back or not steady: each a line. */
  violations: string[];
  /** Kill to the first right answer of a call made after it; undefined if none came within CHAIN_WAIT_MS. */
  recoveryS?: number;
}

/** Each node's node-to-node channel: peers connected of those it knows (what tells a chain that stays broken why). */
async function channels(world: ChaosWorld): Promise<string> {
  const one = async (m: LabMachine): Promise<string> => {
    const st = await world.client.dataPathStatus(world.nodeId(m), { timeoutMs: 5_000 }).catch((e: unknown) => (e as Error).message);
    return typeof st === 'string' ? `${m.name} ${st}` : `${m.name} ${st.remote?.peers ?? 0}/${st.remote?.peersKnown ?? 0} peers up`;
  };
  return (await Promise.all(world.machines.map(one))).join(', ');
}

/** Each stage's name record and that proc's record in the table (what tells a chain that stays broken why). */
async function stages(world: ChaosWorld): Promise<string> {
  const names = await world.client.names(SPARE_REALM).catch((): NameRecord[] => []);
  const one = async (i: number): Promise<string> => {
    const n = names.find((r) => r.name === stageName(i));
    if (n === undefined) return `${stageName(i)} unnamed`;
    const r = await world.client.proc(n.pid).catch(() => undefined);
    const where = n.node === undefined ? '' : `@${world.machineOf(n.node).name}:${n.endpoint ?? '?'}`;
    return `${stageName(i)} -> ${n.pid}${where} ${r === undefined ? 'no record' : `${r.state}${r.status === undefined ? '' : ` ${r.status.kind}`}`}`;
  };
  return (await Promise.all(Array.from({ length: CHAIN_STAGES }, (_, i) => one(i)))).join(', ');
}

/**
 * After the fault (killed at `killMs`, the machine back at `backMs`): waits for the chain to answer,
 * then for CHAIN_STEADY_CALLS right answers in a row, stops the callers and judges every call.
 */
export async function judgeChain(world: ChaosWorld, chain: Chain, fault: { killMs: number; backMs: number }, log: (line: string) => void): Promise<ChainOutcome> {
  const { killMs, backMs } = fault;
  const violations: string[] = [];
  const deadline = killMs + CHAIN_WAIT_MS;
  const after = (c: ChainCall): boolean => c.startMs > killMs + CHAIN_KILL_SETTLE_MS && right(c);
  while (chain.calls.find(after) === undefined && Date.now() < deadline) await sleep(POLL_MS);
  const first = chain.calls.find(after);
  // Outside the fault (from one bound before the kill to the machine back, the chain answering, and a rejoin), every
  // node answers: a call its node did not answer within the bound hung there.
  const bound = CHAIN_CALL_TIMEOUT_MS + CALL_REPLY_SLACK_MS + CHAIN_HANG_SLACK_MS;
  const faultEnd = Math.max(backMs, first?.endMs ?? Infinity) + CHAIN_REJOIN_MS;
  await sleep(Math.max(0, Math.min(faultEnd, deadline) - Date.now()));
  await chain.stop();
  if (first === undefined) violations.push(`the chain did not answer within ${CHAIN_WAIT_MS / 1000} s of the kill (channels: ${await channels(world)}; names: ${await stages(world)})`);
  const steady = await untilSteady(world, Date.now() + CHAIN_WAIT_MS);
  if (!steady.steady) violations.push(`the chain did not answer ${CHAIN_STEADY_CALLS} calls in a row after the fault (last failed: ${steady.failed.slice(-2).join('; ')}; channels: ${await channels(world)})`);
  const judged = judgeCalls(chain.calls, { killMs, faultEndMs: faultEnd, boundMs: bound });
  violations.push(...judged.violations);
  const recoveryS = first === undefined ? undefined : (first.endMs - killMs) / 1000;
  const slowest = Math.max(0, ...chain.calls.filter(right).map((c) => c.endMs - c.startMs));
  const errorList = describeErrors(chain.calls);
  log(`chain: ${chain.calls.length} calls (right ones in up to ${slowest} ms), errors ${errorList.length === 0 ? 'none' : errorList.join('; ')}; answers again ${recoveryS === undefined ? 'never' : `after ${recoveryS.toFixed(2)} s`}`);
  return { calls: chain.calls.length, errors: judged.errors, violations, ...(recoveryS === undefined ? {} : { recoveryS }) };
}
