// Accepting work: spawn requests, placement (LC by reservation, BE by credits), run orders, creates.
import { assert } from '../../assert.js';
import { parseSpec } from '../../proc/spec.js';
import type { ProcSpec } from '../../proc/types.js';
import { ControlError } from '../errors.js';
import { LC_PENDING_MAX, QueueFullError } from '../placement.js';
import type { DeployedProgram, ProcRecord, SpawnReply } from '../protocol/index.js';
import type { SchedulerMsg, SchedulerState } from './state.js';
import { overQuota } from './quotas.js';

/**
 * BE procs the scheduler places on its own node before spreading to the least loaded one. Its orders
 * skip NATS, so under light load a spawn takes one hop; under heavy load the leader's process would
 * be the bottleneck (scheduler and node manager share its one thread).
 */
export const LOCAL_FIRST_BE_MAX = 4;

/**
 * The fast path: a record placed at accept time has its order sent at once, in parallel with the
 * create, so the proc starts one table write earlier. The node writes nothing for it until the
 * `created` note (or a read) shows the record is durable; a failed create cancels it.
 */
function send(s: SchedulerState, r: ProcRecord): void {
  assert(r.node !== undefined, `a record sent at accept time is placed: ${r.pid}`);
  s.deps.toNode(r.node, { op: 'run', order: { ...s.order(r), record: r, pendingCreate: true } }).then(
    () => s.ctx.self.tell({ type: 'run-taken', pid: r.pid }),
    (e: unknown) => s.ops.finish(r.pid, { kind: 'lost', message: `node ${r.node} did not take the proc: ${(e as Error).message}` }),
  );
}

function fitsBe(s: SchedulerState, spec: ProcSpec, node: string, slots: number): boolean {
  const free = s.placements.free(node);
  return (s.beOn.get(node) ?? 0) < slots && free !== undefined && spec.mcpu <= free.mcpu && spec.memMb <= free.memMb;
}

/** A node with a free BE slot and room, if the BE queues are empty (queued work goes first, fairly). */
function beNodeNow(s: SchedulerState, spec: ProcSpec): string | undefined {
  if (s.be.size > 0) return undefined;
  // Light load: the scheduler's own node, whose orders skip NATS (the lowest start latency).
  const localNode = s.deps.localNode;
  const local = localNode === undefined ? undefined : s.credits.get(localNode);
  if (localNode !== undefined && local !== undefined && (s.beOn.get(localNode) ?? 0) < LOCAL_FIRST_BE_MAX && fitsBe(s, spec, localNode, local)) return localNode;
  // Past that, the least loaded node: one process (and core) per node shares the work.
  let best: string | undefined;
  for (const [node, slots] of s.credits) if (fitsBe(s, spec, node, slots) && (best === undefined || (s.beOn.get(node) ?? 0) < (s.beOn.get(best) ?? 0))) best = node;
  return best;
}

export function dispatch(s: SchedulerState, r: ProcRecord, node: string): void {
  const rec: ProcRecord = { ...r, state: 'starting', node };
  s.live.set(r.pid, rec);
  s.deps.table
    // Not once this scheduler is stopped (deposed): its read may come back after the lease lapsed,
    // and the record then stays queued for the next leader (found by the simulator, message-chaos).
    .transition(r.pid, (cur) => (s.active && cur.state === 'queued' ? { ...cur, state: 'starting', node } : undefined))
    .then((written) => (written === undefined ? undefined : s.deps.toNode(node, { op: 'run', order: s.order(rec) }).then(() => s.ctx.self.tell({ type: 'run-taken', pid: r.pid }))))
    .catch((e: unknown) => s.ops.finish(r.pid, { kind: 'lost', message: `node ${node} did not take the proc: ${(e as Error).message}` }));
}

function refuse(reply: (r: SpawnReply) => void, e: ControlError): void {
  reply({ ok: false, error: e.toWire() });
}

/** Places (LC) or queues (BE) an accepted record; undefined when it was refused (the reply is sent). */
function place(s: SchedulerState, rec: ProcRecord, reply: (r: SpawnReply) => void): ProcRecord | undefined {
  if (rec.spec.lc) {
    const p = s.placements.placeLc({ pid: rec.pid, mcpu: rec.spec.mcpu, memMb: rec.spec.memMb });
    if (p.kind === 'never-fits') return void refuse(reply, new ControlError('never-fits', `no node could ever run this proc: ${p.reason}`));
    if (p.kind === 'no-room-now' && s.lcPending.length >= LC_PENDING_MAX) return void refuse(reply, new ControlError('queue-full', `${LC_PENDING_MAX} LC procs already wait for room`));
    if (p.kind === 'placed') return { ...rec, state: 'starting', node: p.node };
    s.lcPending.push(rec);
    return rec;
  }
  const node = beNodeNow(s, rec.spec);
  if (node !== undefined) {
    s.placements.assign({ pid: rec.pid, mcpu: rec.spec.mcpu, memMb: rec.spec.memMb }, node);
    s.countBe(node, 1);
    return { ...rec, state: 'starting', node };
  }
  try {
    s.be.push({ realm: rec.spec.realm, record: rec });
  } catch (e) {
    if (e instanceof QueueFullError) return void refuse(reply, new ControlError('queue-full', e.message));
    throw e;
  }
  return rec;
}

/** Places (LC) or queues (BE) an accepted record, then writes it; the reply goes out once it is durable. */
export function accept(s: SchedulerState, input: ProcRecord, reply: (r: SpawnReply) => void): void {
  const created = place(s, input, reply);
  if (created === undefined) return;
  s.live.set(created.pid, created);
  s.creating.set(created.pid, undefined);
  if (created.node !== undefined) send(s, created);
  s.deps.table.create(created).then(
    (revision) => s.ctx.self.tell({ type: 'created', record: created, revision, reply }),
    (e: unknown) => s.ctx.self.tell({ type: 'create-failed', record: created, error: e, reply }),
  );
}

/** Hands queued work to free room: pending LC procs first, then BE procs to nodes holding credits. */
export function drain(s: SchedulerState): void {
  for (let i = 0; i < s.lcPending.length; ) {
    const r = s.lcPending[i]!;
    const p = s.placements.placeLc({ pid: r.pid, mcpu: r.spec.mcpu, memMb: r.spec.memMb });
    if (p.kind !== 'placed') {
      i++;
      continue;
    }
    s.lcPending.splice(i, 1);
    dispatch(s, r, p.node);
  }
  for (const [node, slots] of s.credits) {
    while ((s.beOn.get(node) ?? 0) < slots) {
      const free = s.placements.free(node);
      const item = s.be.take((q) => free !== undefined && q.record.spec.mcpu <= free.mcpu && q.record.spec.memMb <= free.memMb);
      if (item === undefined) break;
      s.placements.assign({ pid: item.record.pid, mcpu: item.record.spec.mcpu, memMb: item.record.spec.memMb }, node);
      s.countBe(node, 1);
      dispatch(s, item.record, node);
    }
  }
}

export function spawn(s: SchedulerState, input: unknown, reply: (r: SpawnReply) => void): void {
  const parsed = parseSpec(input);
  if (parsed._tag === 'Left') return reply({ ok: false, error: { type: 'bad-spec', message: parsed.left.message, field: parsed.left.field } });
  const spec = parsed.right;
  if (!s.realms.has(spec.realm)) return refuse(reply, new ControlError('unknown-realm', `realm "${spec.realm}" does not exist; create it with \`sigma realm create ${spec.realm}\``, 'realm'));
  // Own properties only: a program named `constructor` or `__proto__` is unknown, not Object's.
  if (Object.hasOwn(s.deps.programs, spec.program)) return admit(s, spec, undefined, reply);
  const deployed = s.deps.deployed;
  if (deployed === undefined) return refuse(reply, new ControlError('unknown-program', `no program "${spec.program}"; known: ${Object.keys(s.deps.programs).sort().join(', ') || '(none)'}`, 'program'));
  // A program deployed to the realm: its current version, read now (a deploy just before is seen).
  deployed.resolve(spec.realm, spec.program).then(
    (program) => s.ctx.self.tell({ type: 'spawn-resolved', spec, program, reply }),
    (error: unknown) => s.ctx.self.tell({ type: 'spawn-resolved', spec, program: undefined, error, reply }),
  );
}

function unknownProgram(s: SchedulerState, spec: ProcSpec): ControlError {
  return new ControlError('unknown-program', `no program "${spec.program}" in realm ${spec.realm}; built in: ${Object.keys(s.deps.programs).sort().join(', ') || '(none)'}; deployed: \`sigma programs ls --realm ${spec.realm}\``, 'program');
}

export function spawnResolved(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'spawn-resolved' }>): void {
  if (m.error !== undefined) return refuse(m.reply, new ControlError('internal', `could not read the programs of realm ${m.spec.realm}: ${(m.error as Error).message}`));
  if (m.program === undefined) return refuse(m.reply, unknownProgram(s, m.spec));
  // The realm may have gone while the program was read.
  if (!s.realms.has(m.spec.realm)) return refuse(m.reply, new ControlError('unknown-realm', `realm "${m.spec.realm}" does not exist`, 'realm'));
  admit(s, m.spec, m.program, m.reply);
}

function admit(s: SchedulerState, spec: ProcSpec, program: DeployedProgram | undefined, reply: (r: SpawnReply) => void): void {
  const over = overQuota(s.quotas.get(spec.realm), s.live.usage(spec.realm), spec);
  if (over !== undefined) return refuse(reply, new ControlError('quota-exceeded', over, 'realm'));
  const rec = newRecord(s, spec);
  accept(s, program === undefined ? rec : { ...rec, program }, reply);
}

export function created(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'created' }>): void {
  m.reply({ ok: true, pid: m.record.pid });
  const decided = s.creating.get(m.record.pid);
  s.creating.delete(m.record.pid);
  // Even if the proc has exited meanwhile: its node holds the exit until it knows the revision.
  if (m.record.node !== undefined) s.deps.tellNode(m.record.node, { op: 'created', pid: m.record.pid, revision: m.revision });
  // onExit already ran when the status was decided; only the write was held back.
  if (decided !== undefined) s.ops.recordExit(m.record.pid, decided, 1);
  if (s.removing.has(m.record.spec.realm)) s.ops.realmGone(m.record.spec.realm);
  if (m.record.node === undefined) drain(s);
}

export function createFailed(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'create-failed' }>): void {
  const r = m.record;
  s.creating.delete(r.pid);
  if (r.node !== undefined) s.deps.tellNode(r.node, { op: 'cancel', pid: r.pid });
  if (s.live.has(r.pid) && r.node !== undefined && !r.spec.lc && s.beOn.has(r.node)) s.countBe(r.node, -1);
  s.live.delete(r.pid);
  s.placements.release(r.pid);
  s.be.remove((q) => q.record.pid === r.pid);
  s.ops.removePending(r.pid);
  // The create may have landed even though its answer did not (a timed-out KV call): end that
  // record, or it stays 'queued'/'starting' forever with nobody to run it (found by the
  // simulator: realm-teardown-under-load seed 126). A no-op when there is no record.
  s.ops.recordExit(r.pid, { kind: 'lost', message: 'the spawn was refused: its record could not be confirmed; it never ran' }, 1);
  s.evictWanted.delete(r.pid);
  if (s.removing.has(r.spec.realm)) s.ops.realmGone(r.spec.realm);
  refuse(m.reply, new ControlError('internal', `could not record the proc: ${(m.error as Error).message}`));
}

export function pull(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'pull' }>): void {
  s.credits.set(m.node, m.slots);
  drain(s);
  m.reply([]);
}


/** A fresh record of this term: key order as the table has always stored it. */
export function newRecord(s: SchedulerState, spec: ProcSpec, restarts = 0): ProcRecord {
  return { pid: s.nextPid(spec), spec, state: 'queued', restarts, term: s.deps.term, createdAtMs: s.nowMs() };
}
