import { decodeNodeRecord, decodeRealmRecord, type NodeRecord, type ProcRecord, type RealmQuota } from '../protocol/index.js';
import type { SchedulerDeps, SchedulerMsg, SchedulerState } from './state.js';
import { setQuota } from './quotas.js';

/** What a new scheduler recovers from: the proc table, live nodes and realms. */
export async function snapshot(deps: SchedulerDeps): Promise<{ records: ProcRecord[]; nodes: NodeRecord[]; realms: string[]; quotas: Array<[string, RealmQuota]> }> {
  // Live procs only, through the table's index: recovery must not grow with history.
  const [records, nodeKeys, realms] = await Promise.all([deps.table.liveRecords(), deps.nodesKv.keys(), deps.realmsKv.keys()]);
  // The gets in parallel: a recovery's reads are on the failover's path (one round trip, not one a key).
  const [nodeValues, realmValues] = await Promise.all([Promise.all(nodeKeys.map((k) => deps.nodesKv.get(k))), Promise.all(realms.map((k) => deps.realmsKv.get(k)))]);
  const nodes = nodeValues.map((e) => (e?.value == null ? undefined : decodeNodeRecord(e.value))).filter((n): n is NodeRecord => n !== undefined);
  const quotas: Array<[string, RealmQuota]> = [];
  realms.forEach((k, i) => {
    const e = realmValues[i];
    const quota = e?.value == null ? undefined : decodeRealmRecord(e.value)?.quota;
    if (quota !== undefined) quotas.push([k, quota]);
  });
  return { records, nodes, realms, quotas };
}

/** Rebuilds reservations, queues and live procs from the snapshot, ending what died with its node. */
export function recover(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'recovered' }>): void {
  s.realms = new Set(m.realms);
  for (const [realm, quota] of m.quotas) setQuota(s, realm, quota);
  const now = s.nowMs();
  if (s.deps.seen !== undefined) s.liveness = s.deps.seen(now);
  for (const n of m.nodes) {
    if (n.procs !== false) s.placements.upsertNode({ id: n.id, mcpu: n.mcpu, memMb: n.memMb }); // as nodeUp
    s.liveness.expect(n.id, now); // not heard of as a standby: a grace period from here
  }
  const alive = new Set(m.nodes.map((n) => n.id));
  for (const r of m.records) {
    if (r.state === 'exited') continue;
    s.live.set(r.pid, r);
    if (r.node !== undefined && alive.has(r.node)) adopt(s, r, r.node);
    else if (r.node !== undefined) {
      // A node the snapshot did not show may still be up: a recovery read no node at all while the
      // nodes stream had no leader, ended three running services lost and ran them again (the chaos
      // datapath scenario). Its procs wait for its heartbeat, and end lost if none comes in time.
      const waiting = s.unconfirmed.get(r.node) ?? [];
      waiting.push(r);
      s.unconfirmed.set(r.node, waiting);
      s.liveness.expect(r.node, now);
    } else if (r.spec.lc) s.lcPending.push(r);
    else s.be.push({ realm: r.spec.realm, record: r });
  }
  // Nodes seen as a standby that neither the snapshot nor a live proc knows are nobody's concern.
  for (const id of [...s.liveness.lastSeen.keys()]) if (!alive.has(id) && !s.unconfirmed.has(id)) s.liveness.forget(id);
  s.log.info({ term: s.deps.term, live: s.live.size, nodes: alive.size, unconfirmed: s.unconfirmed.size }, 'scheduler recovered');
}

/** A live proc of the table placed on its node, which is up: counted there, its order sent again if it may not have arrived. */
export function adopt(s: SchedulerState, r: ProcRecord, node: string): void {
  s.placements.assign({ pid: r.pid, mcpu: r.spec.mcpu, memMb: r.spec.memMb }, node);
  if (!r.spec.lc) s.countBe(node, 1);
  // The old leader may have died between recording the placement and sending the order; the
  // node ignores a run it already has, so sending again is safe. An order that does not get
  // through ends the proc lost, as in dispatch: nobody else would ever run it (found by the
  // simulator: message-chaos seed 704 left a proc 'starting' when the re-sent order was dropped).
  if (r.state === 'starting') s.deps.toNode(node, { op: 'run', order: s.order(r) }).catch((e: unknown) => s.ops.finish(r.pid, { kind: 'lost', message: `node ${node} did not take the proc: ${(e as Error).message}` }));
}
