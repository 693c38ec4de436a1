// Accepting work: spawn requests, placement (LC by reservation, BE by credits), run orders, creates.
import { assert } from '../../assert.js';
import { parseSpec } from '../../proc/spec.js';
import type { ProcSpec } from '../../proc/types.js';
import { ControlError } from '../errors.js';
import { checkRealm, unknownRealm } from './realms.js';
import { LC_PENDING_MAX, QueueFullError } from '../placement.js';
import { keyedPid, type DeployedProgram, type ProcRecord, type SpawnReply } from '../protocol/index.js';
import type { Idempotency, SchedulerMsg, SchedulerState } from './state.js';
import { overQuota } from './quotas.js';
import { traceSpawn } from '../../spawn-trace.js';

/**
 * BE procs the scheduler places on its own node before spreading to the least loaded one. Its orders
 * skip NATS, so under light load a spawn takes one hop; under heavy load the leader's process would
 * be the bottleneck (scheduler and node manager share its one thread).
 */
export const LOCAL_FIRST_BE_MAX = 4;
/** A spawn's idempotency key (the client's, or the caller's own): its pid is keyedPid(realm, key). */
export const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The fast path: a record placed at accept time has its order sent at once, in parallel with the
 * create, so the proc starts one table write earlier. The node writes nothing for it until the
 * `created` note (or a read) shows the record is durable; a failed create cancels it.
 */
function send(s: SchedulerState, r: ProcRecord): void {
  assert(r.node !== undefined, `a record sent at accept time is placed: ${r.pid}`);
  traceSpawn('sched.order-sent', r.pid);
  s.deps.toNode(r.node, { op: 'run', order: { ...s.order(r), record: r, pendingCreate: true } }).then(
    () => s.ctx.self.tell({ type: 'run-taken', pid: r.pid }),
    (e: unknown) => s.ops.finish(r.pid, { kind: 'lost', message: `node ${r.node} did not take the proc: ${(e as Error).message}` }),
  );
}

/** A node with a free BE slot and room, if the BE queues are empty (queued work goes first, fairly). */
function beNodeNow(s: SchedulerState, spec: ProcSpec): string | undefined {
  if (s.be.size > 0) return undefined;
  // Light load: the scheduler's own node, whose orders skip NATS (the lowest start latency).
  const localNode = s.deps.localNode;
  if (localNode !== undefined && (s.beOn.get(localNode) ?? 0) < LOCAL_FIRST_BE_MAX && s.beNodes.fits(localNode, spec)) return localNode;
  // Past that, the least loaded node: one process (and core) per node shares the work. From the
  // index of nodes with a free slot, not a scan: placement costs the same at 10 nodes and 1,000.
  return s.beNodes.leastLoaded(spec);
}

/** The run order of a record whose create is durable (its revision known): the node writes from there. */
function ordered(s: SchedulerState, r: ProcRecord, node: string, revision: number): void {
  s.deps
    .toNode(node, { op: 'run', order: s.order(r, revision) })
    .then(() => s.ctx.self.tell({ type: 'run-taken', pid: r.pid }))
    .catch((e: unknown) => s.ops.finish(r.pid, { kind: 'lost', message: `node ${node} did not take the proc: ${(e as Error).message}` }));
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

/**
 * Places (LC) or queues (BE) an accepted record, then writes it; the reply goes out once it is durable.
 * `checked`: the pid may already have a record (a repeated idempotency key this scheduler does not know,
 * e.g. from its predecessor): the order waits for the create, and a record found there answers instead.
 * `expiresAtMs`: no create is tried past it (its caller has stopped waiting).
 */
export function accept(s: SchedulerState, input: ProcRecord, reply: (r: SpawnReply) => void, checked = false, expiresAtMs = Infinity): void {
  const created = place(s, input, reply);
  if (created === undefined) return;
  traceSpawn('sched.placed', created.pid);
  s.live.set(created.pid, created);
  s.creating.set(created.pid, undefined);
  if (created.node !== undefined && !checked) send(s, created);
  createRecord(s, created, expiresAtMs).then(
    (revision) => s.ctx.self.tell({ type: 'created', record: created, revision, reply, checked }),
    (e: unknown) => s.ctx.self.tell((checked || e instanceof TakenError) && (e as { type?: string }).type === 'key-exists' ? { type: 'create-exists', record: created, reply } : { type: 'create-failed', record: created, error: e, reply }),
  );
}

/** Creates tried while JetStream has no leader for the proc table (an election: 4-9 s), 500 ms apart. */
export const CREATE_ATTEMPTS_MAX = 20;
export const CREATE_RETRY_MS = 500;

/** A retried create found the pid's record, made by another scheduler (a predecessor's create of the key). */
class TakenError extends Error {
  readonly type = 'key-exists';
}

/**
 * The record's create, tried again when it timed out or found no stream leader (found by the simulator,
 * js-leader-change, and the chaos nats-server scenario: spawns refused `internal` during an election).
 * A retry that finds the key reads it: a record of this term made at this record's creation time is our
 * own earlier attempt, which landed. The term alone is not enough: the same scheduler may have made the
 * key's record for an earlier request whose proc has since exited (message-chaos seed 277 ran it twice).
 */
async function createRecord(s: SchedulerState, rec: ProcRecord, expiresAtMs: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await s.deps.table.create(rec);
    } catch (e) {
      const type = (e as { type?: string }).type;
      if (type === 'key-exists' && attempt > 1) {
        const cur = await s.deps.table.get(rec.pid);
        if (cur !== undefined && cur.record.term === rec.term && cur.record.createdAtMs === rec.createdAtMs) return cur.revision;
        throw new TakenError(`proc ${rec.pid} was created by the scheduler of term ${cur?.record.term}`);
      }
      if ((type !== 'timeout' && type !== 'no-responders') || attempt >= CREATE_ATTEMPTS_MAX || !s.active || s.nowMs() > expiresAtMs) throw e;
    }
    await new Promise<void>((r) => s.ctx.ports.timers.setTimeout(r, CREATE_RETRY_MS));
  }
}

/** Hands queued work to free room: pending LC procs first, then BE procs to nodes holding credits. */
export function drain(s: SchedulerState): void {
  // Called on every heartbeat (a node's credits may have changed): with nothing queued, nothing to walk.
  if (s.lcPending.length === 0 && s.be.size === 0) return;
  // Not a record whose create is still in flight: dispatch moves the record from queued to starting, and
  // a record not there yet would be left queued with nobody to run it (found by the simulator,
  // node-churn seed 19, once the create took two writes); created() drains again.
  for (let i = 0; i < s.lcPending.length; ) {
    const r = s.lcPending[i]!;
    if (s.creating.has(r.pid)) {
      i++;
      continue;
    }
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
      const item = s.be.take((q) => free !== undefined && !s.creating.has(q.record.pid) && q.record.spec.mcpu <= free.mcpu && q.record.spec.memMb <= free.memMb);
      if (item === undefined) break;
      s.placements.assign({ pid: item.record.pid, mcpu: item.record.spec.mcpu, memMb: item.record.spec.memMb }, node);
      s.countBe(node, 1);
      dispatch(s, item.record, node);
    }
  }
}

/** The scheduler stops making a spawn's record this long before its caller's deadline: the request's transit, and the caller's last read of its key. */
export const SPAWN_EXPIRY_MARGIN_MS = 1_000;

/** When a request's caller stops waiting, by this scheduler's clock (never, for a request without `timeLeftMs`); or why it is malformed. */
function expiry(input: unknown, receivedAtMs: number): number | string {
  const left = (input as Record<string, unknown>)['timeLeftMs'];
  if (left === undefined) return Infinity;
  if (typeof left !== 'number' || !Number.isFinite(left) || left < 0) return `bad spawn request: timeLeftMs must be a number of milliseconds, got ${JSON.stringify(left)}`;
  return receivedAtMs + left - SPAWN_EXPIRY_MARGIN_MS;
}

/** Past its caller's deadline a spawn makes nothing (a queue through a recovery can outlast it: the chaos service scenario's ghosts). */
function expired(s: SchedulerState, expiresAtMs: number, reply: (r: SpawnReply) => void): boolean {
  if (s.nowMs() <= expiresAtMs) return false;
  refuse(reply, new ControlError('no-scheduler', "the spawn reached a scheduler too late to be made within its caller's deadline; nothing was made"));
  return true;
}

export function spawn(s: SchedulerState, input: unknown, receivedAtMs: number, reply: (r: SpawnReply) => void): void {
  const expiresAtMs = expiry(input, receivedAtMs);
  if (typeof expiresAtMs === 'string') return reply({ ok: false, error: { type: 'bad-spec', message: expiresAtMs, field: 'timeLeftMs' } });
  if (expired(s, expiresAtMs, reply)) return;
  const parsed = parseSpec(input);
  if (parsed._tag === 'Left') return reply({ ok: false, error: { type: 'bad-spec', message: parsed.left.message, field: parsed.left.field } });
  const spec = parsed.right;
  // A realm unknown here is looked up first (realms.ts, checkRealm). Not read (its stream electing): no
  // answer, so the client sends the spawn again, as it does while no scheduler answers.
  if (!s.realms.has(spec.realm)) {
    return checkRealm(s, spec.realm, (known) => {
      if (known === true) spawn(s, input, receivedAtMs, reply);
      else if (known === false) refuse(reply, unknownRealm(spec.realm, false, 'realm'));
      else s.log.warn({ realm: spec.realm, err: known }, 'a spawn for a realm this scheduler does not know of waits for its retry: the realm could not be read');
    });
  }
  const idem = idempotency(input);
  if (typeof idem === 'string') return reply({ ok: false, error: { type: 'bad-spec', message: idem, field: 'idempotencyKey' } });
  if (idem !== undefined) traceSpawn('sched.recv', keyedPid(spec.realm, idem.key));
  // Own properties only: a program named `constructor` or `__proto__` is unknown, not Object's.
  if (Object.hasOwn(s.deps.programs, spec.program)) return admit(s, spec, undefined, idem, expiresAtMs, reply);
  const deployed = s.deps.deployed;
  if (deployed === undefined) return refuse(reply, new ControlError('unknown-program', `no program "${spec.program}"; known: ${Object.keys(s.deps.programs).sort().join(', ') || '(none)'}`, 'program'));
  // A program deployed to the realm: its current version, read now (a deploy just before is seen).
  deployed.resolve(spec.realm, spec.program).then(
    (program) => s.ctx.self.tell({ type: 'spawn-resolved', spec, program, idem, expiresAtMs, reply }),
    (error: unknown) => s.ctx.self.tell({ type: 'spawn-resolved', spec, program: undefined, idem, expiresAtMs, error, reply }),
  );
}

function unknownProgram(s: SchedulerState, spec: ProcSpec): ControlError {
  return new ControlError('unknown-program', `no program "${spec.program}" in realm ${spec.realm}; built in: ${Object.keys(s.deps.programs).sort().join(', ') || '(none)'}; deployed: \`sigma programs ls --realm ${spec.realm}\``, 'program');
}

export function spawnResolved(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'spawn-resolved' }>): void {
  if (m.idem !== undefined) traceSpawn('sched.resolved', keyedPid(m.spec.realm, m.idem.key));
  if (m.error !== undefined) return refuse(m.reply, new ControlError('internal', `could not read the programs of realm ${m.spec.realm}: ${(m.error as Error).message}`));
  if (m.program === undefined) return refuse(m.reply, unknownProgram(s, m.spec));
  // The realm may have gone while the program was read.
  if (!s.realms.has(m.spec.realm)) return refuse(m.reply, new ControlError('unknown-realm', `realm "${m.spec.realm}" does not exist`, 'realm'));
  admit(s, m.spec, m.program, m.idem, m.expiresAtMs, m.reply);
}

/** A spec whose program is known: a repeated key's first pid, or a new record (within the realm's quota). */
function admit(s: SchedulerState, spec: ProcSpec, program: DeployedProgram | undefined, idem: Idempotency | undefined, expiresAtMs: number, reply: (r: SpawnReply) => void): void {
  if (expired(s, expiresAtMs, reply)) return;
  const pid = idem === undefined ? undefined : keyedPid(spec.realm, idem.key);
  // Creating counts too: a proc whose node refused its order has left `live` while its create may still
  // be in flight, and a second create of the key would take its place (simulator, message-chaos seed 185).
  if (pid !== undefined && (s.live.has(pid) || s.creating.has(pid))) return repeat(s, pid, reply);
  const over = overQuota(s.quotas.get(spec.realm), s.live.usage(spec.realm), spec);
  if (over !== undefined) return refuse(reply, new ControlError('quota-exceeded', over, 'realm'));
  const rec = newRecord(s, spec, 0, pid);
  accept(s, program === undefined ? rec : { ...rec, program }, reply, idem?.repeat === true, expiresAtMs);
}

/** A request's idempotency key: absent, the key, or why it is malformed. */
function idempotency(input: unknown): Idempotency | string | undefined {
  const i = input as Record<string, unknown>;
  const key = Object.hasOwn(i, 'idempotencyKey') ? i['idempotencyKey'] : undefined;
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_RE.test(key)) return `bad spawn request: idempotencyKey must match ${IDEMPOTENCY_KEY_RE}, got ${JSON.stringify(key)}`;
  // Only a key the client made for this call, on its first attempt, is known to be new.
  return { key, repeat: i['fresh'] !== true };
}

/** A key seen before and still live here: its pid, once its record is durable. */
function repeat(s: SchedulerState, pid: string, reply: (r: SpawnReply) => void): void {
  if (!s.creating.has(pid)) return reply({ ok: true, pid });
  const waiting = s.repeats.get(pid) ?? [];
  waiting.push(reply);
  s.repeats.set(pid, waiting);
}

function answerRepeats(s: SchedulerState, pid: string, r: SpawnReply): void {
  for (const reply of s.repeats.get(pid) ?? []) reply(r);
  s.repeats.delete(pid);
}

/** Takes back what accept() set up for a record that will not be this scheduler's after all. */
function unaccept(s: SchedulerState, r: ProcRecord): void {
  s.creating.delete(r.pid);
  if (s.live.has(r.pid) && r.node !== undefined && !r.spec.lc && s.beOn.has(r.node)) s.countBe(r.node, -1);
  s.live.delete(r.pid);
  s.placements.release(r.pid);
  s.be.remove((q) => q.record.pid === r.pid);
  s.ops.removePending(r.pid);
}

/** The checked create found a record: the key was used before (by this scheduler or another). Nothing was sent. */
export function createExists(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'create-exists' }>): void {
  unaccept(s, m.record);
  m.reply({ ok: true, pid: m.record.pid });
  answerRepeats(s, m.record.pid, { ok: true, pid: m.record.pid });
  if (s.removing.has(m.record.spec.realm)) s.ops.realmGone(m.record.spec.realm);
  drain(s);
}

export function created(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'created' }>): void {
  traceSpawn('sched.created', m.record.pid);
  m.reply({ ok: true, pid: m.record.pid });
  answerRepeats(s, m.record.pid, { ok: true, pid: m.record.pid });
  const decided = s.creating.get(m.record.pid);
  s.creating.delete(m.record.pid);
  const node = m.record.node;
  // A checked spawn's order goes now, with the record's revision. Otherwise the order went at accept:
  // even if the proc has exited meanwhile, its node holds the exit until it knows the revision.
  if (node !== undefined && m.checked === true && decided === undefined) ordered(s, m.record, node, m.revision);
  else if (node !== undefined) s.deps.tellNode(node, { op: 'created', pid: m.record.pid, revision: m.revision });
  // onExit already ran when the status was decided; only the write was held back.
  if (decided !== undefined) s.ops.recordExit(m.record.pid, decided, 1);
  if (s.removing.has(m.record.spec.realm)) s.ops.realmGone(m.record.spec.realm);
  if (m.record.node === undefined) drain(s);
}

export function createFailed(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'create-failed' }>): void {
  const r = m.record;
  if (r.node !== undefined) s.deps.tellNode(r.node, { op: 'cancel', pid: r.pid, term: s.deps.term });
  unaccept(s, r);
  // The create may have landed even though its answer did not (a timed-out KV call): end that
  // record, or it stays 'queued'/'starting' forever with nobody to run it (found by the
  // simulator: realm-teardown-under-load seed 126). A no-op when there is no record.
  s.ops.recordExit(r.pid, { kind: 'lost', message: 'the spawn was refused: its record could not be confirmed; it never ran' }, 1);
  s.evictWanted.delete(r.pid);
  if (s.removing.has(r.spec.realm)) s.ops.realmGone(r.spec.realm);
  const error = new ControlError('internal', `could not record the proc: ${(m.error as Error).message}`);
  refuse(m.reply, error);
  answerRepeats(s, r.pid, { ok: false, error: error.toWire() });
}


/** A fresh record of this term: key order as the table has always stored it. */
export function newRecord(s: SchedulerState, spec: ProcSpec, restarts = 0, pid = s.nextPid(spec)): ProcRecord {
  return { pid, spec, state: 'queued', restarts, term: s.deps.term, createdAtMs: s.nowMs() };
}
