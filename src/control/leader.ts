import type { ActorRef, ActorSystem } from '../actors/index.js';
import type { Bus, Kv, Subscription } from '../nats/types.js';
import type { Mutations } from './mutations.js';
import { ProcTable } from './proc-table.js';
import { SUBJECT, decodeJson, decodeNodeRecord, decodeProcEvent, encode, type NodeRequest, type PullRequest } from './protocol.js';
import { schedulerActor, type SchedulerMsg } from './scheduler.js';

/** Reads of the realm list after a change before the leader waits for the next change (each read has its own timeout). */
export const REALMS_READ_ATTEMPTS_MAX = 5;

export interface LeaderDeps {
  bus: Bus;
  system: ActorSystem;
  table: ProcTable;
  nodesKv: Kv;
  realmsKv: Kv;
  namesKv: Kv;
  programs: Readonly<Record<string, string>>;
  nodeTimeoutMs: number;
  nodeRequestTimeoutMs: number;
  /** The node manager in this process: orders for it skip NATS (see startNode). */
  local?: { node: string; deliver(req: NodeRequest): Promise<void> };
  mutations?: Mutations;
}

/**
 * What the elected leader runs: the scheduler actor, fed by NATS subscriptions (spawn, pull, evict,
 * proc events, realm requests) and by a watch on the nodes bucket. Returns a function that stops it
 * all when leadership is lost.
 */
export async function startLeader(d: LeaderDeps, term: number): Promise<() => Promise<void>> {
  const toNode = async (node: string, req: NodeRequest): Promise<void> => {
    if (node === d.local?.node) return d.local.deliver(req);
    const reply = await d.bus.request(SUBJECT.node(node), encode(req), { timeoutMs: d.nodeRequestTimeoutMs });
    const body = decodeJson(reply.data) as { ok?: boolean; error?: { message: string } } | undefined;
    if (body?.ok !== true) throw new Error(body?.error?.message ?? 'node refused');
  };
  const tellNode = (node: string, req: NodeRequest): void => {
    if (node === d.local?.node) return void d.local.deliver(req).catch(() => {});
    try {
      d.bus.publish(SUBJECT.nodeNote(node), encode(req));
    } catch {
      // Closed or disconnected: the node falls back to reading the record (see RunOrder.pendingCreate).
    }
  };
  const sched: ActorRef<SchedulerMsg> = d.system.spawn(
    schedulerActor({
      table: d.table,
      toNode,
      tellNode,
      ...(d.local === undefined ? {} : { localNode: d.local.node }),
      programs: d.programs,
      term,
      realmsKv: d.realmsKv,
      namesKv: d.namesKv,
      nodesKv: d.nodesKv,
      nodeTimeoutMs: d.nodeTimeoutMs,
      ...(d.mutations === undefined ? {} : { mutations: d.mutations }),
    }),
    { name: `scheduler-${term}`, mailbox: { capacity: 200_000 } },
  );
  const subs: Subscription[] = [];
  const serve = (subject: string, toMsg: (body: unknown, respond: (v: unknown) => void) => SchedulerMsg | undefined): void => {
    const sub = d.bus.subscribe(subject);
    subs.push(sub);
    void (async () => {
      for await (const m of sub) {

        const respond = (v: unknown): void => void m.respond(encode(v));
        const msg = toMsg(decodeJson(m.data), respond);
        if (msg === undefined) {
          respond({ ok: false, error: { type: 'bad-request', message: `malformed request on ${subject}` } });
          continue;
        }
        const sent = sched.tryTell(msg);
        if (sent._tag === 'Left') respond({ ok: false, error: { type: 'no-scheduler', message: sent.left.message } });
      }
    })();
  };
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  serve(SUBJECT.spawn, (body, reply) => ({ type: 'spawn', input: body, reply }));
  serve(SUBJECT.evict, (b, reply) => (isObj(b) && typeof b['pid'] === 'string' ? { type: 'evict', pid: b['pid'], graceMs: typeof b['graceMs'] === 'number' ? b['graceMs'] : 2000, reply } : undefined));
  serve(SUBJECT.pull, (b, reply) => {
    const p = b as PullRequest;
    return isObj(b) && typeof p.node === 'string' && typeof p.max === 'number' ? { type: 'pull', node: p.node, slots: p.max, reply: () => reply({ ok: true }) } : undefined;
  });
  serve(SUBJECT.realm.create, (b, reply) => (isObj(b) && typeof b['name'] === 'string' ? { type: 'realm-create', name: b['name'], reply } : undefined));
  serve(SUBJECT.realm.remove, (b, reply) => (isObj(b) && typeof b['name'] === 'string' ? { type: 'realm-remove', name: b['name'], reply } : undefined));
  const events = d.bus.subscribe(SUBJECT.procEvent);
  subs.push(events);
  void (async () => {
    for await (const m of events) {
      const ev = decodeProcEvent(m.data);
      if (ev !== undefined) sched.tell({ type: 'proc-event', ev });
    }
  })();

  // Follow node heartbeats; the scheduler reads its own snapshot on start (and on any restart).
  const nodesWatch = await d.nodesKv.watch({});
  void (async () => {
    for await (const e of nodesWatch) {
      const n = e.value === null ? undefined : decodeNodeRecord(e.value);
      if (n !== undefined) sched.tell({ type: 'node-up', node: n });
    }
  })();
  const realmsWatch = await d.realmsKv.watch({});
  void (async () => {
    for await (const _ of realmsWatch) {
      // A read that fails (NATS slow or away) must neither end this loop nor reject unhandled, which
      // kills the node process (found by the simulator: slow KV during a realm change). Each attempt
      // is bounded by the KV call's own timeout.
      for (let attempt = 1; attempt <= REALMS_READ_ATTEMPTS_MAX; attempt++) {
        const names = await d.realmsKv.keys().catch(() => undefined);
        if (names !== undefined) {
          sched.tell({ type: 'realms', names });
          break;
        }
      }
    }
  })();

  return async () => {
    for (const s of subs) s.unsubscribe();
    nodesWatch.stop();
    realmsWatch.stop();
    await d.system.stop(sched);
  };
}
