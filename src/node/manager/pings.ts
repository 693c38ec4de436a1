// Hosts are asked whether they live (pings, a few seconds apart) and for their data-path counters (only
// when someone asks the node for its status): an idle host is woken by neither more than it must be.
import type { DataPathStatus } from '../datapath/port.js';
import { hostGone } from './hosts.js';
import type { NodeState, StatusWaiter } from './state.js';

/** How long a status waits for the hosts' counters before it answers with what it has. */
export const STATUS_REFRESH_MS = 250;

/** Pings every host; one that missed too many in a row is killed and its procs end crashed. */
export function pingHosts(s: NodeState): void {
  for (const [id, h] of s.hosts) {
    if (h.pingsMissed >= s.cfg.hostPingMissesMax) {
      s.log.warn({ host: id }, 'proc host stopped answering; killing it');
      h.handle.kill();
      hostGone(s, id, `missed ${h.pingsMissed} pings`);
      continue;
    }
    h.pingsMissed++;
    h.handle.send({ t: 'ping', seq: s.pingSeq++ });
  }
}

/** Any message from a host: it lives (a hung host sends nothing). A pong also ends its part of any status wait. */
export function heardFrom(s: NodeState, hostId: string, pong: boolean): void {
  const h = s.hosts.get(hostId);
  if (h !== undefined) h.pingsMissed = 0;
  if (!pong) return;
  for (const w of s.statusWaiters) {
    w.hosts.delete(hostId);
    if (w.hosts.size === 0) answer(s, w);
  }
}

/** The node's data-path status, once every host has reported its counters (a host sends them before its pong). */
export function datapathStatus(s: NodeState, reply: (st: DataPathStatus | undefined) => void): void {
  if (s.dp === undefined || s.hosts.size === 0) return reply(s.dp?.status());
  const w: StatusWaiter = { hosts: new Set(s.hosts.keys()), reply };
  s.statusWaiters.add(w);
  for (const h of s.hosts.values()) h.handle.send({ t: 'ping', seq: s.pingSeq++ });
  s.ctx.scheduleOnce(STATUS_REFRESH_MS, { type: 'status-deadline', waiter: w });
}

export function answer(s: NodeState, w: StatusWaiter): void {
  if (!s.statusWaiters.delete(w)) return; // answered already
  w.reply(s.dp?.status());
}
