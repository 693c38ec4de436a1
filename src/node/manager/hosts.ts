// Proc hosts: two shared hosts per realm (its LC procs', its BE procs') and a fresh one per `dedicated`
// proc, started on demand and retired.
import { describe } from '../../actors/errors.js';
import type { RunOrder } from '../../control/protocol/index.js';
import type { DataPathPort, HostWiring } from '../datapath/port.js';
import type { HostLimits } from '../sandbox/cgroups.js';
import type { NodeMsg, NodeState } from './state.js';
import { assert } from '../../assert.js';
import { traceSpawn } from '../../spawn-trace.js';

const DEDICATED = 'dedicated:';
const SHARED = 'shared:';

/**
 * LC and BE procs of a realm share a host only with their own class: a BE proc that spins then competes
 * at BE weight, not inside the host (and the cgroup) of the realm's latency-critical services.
 */
export const sharedKey = (spec: { realm: string; lc: boolean }): string => `${spec.realm}/${spec.lc ? 'lc' : 'be'}`;

/** Forgets a shared host (gone, tainted, its realm removed): the next proc of its class starts a new one. */
export function unshare(s: NodeState, hostId: string): void {
  const key = s.hosts.get(hostId)?.sharedKey;
  if (key !== undefined && s.shared.get(key) === hostId) s.shared.delete(key);
}


function prepareDataPath(s: NodeState, port: DataPathPort, hostId: string, realm: string): Promise<HostWiring | undefined> {
  return port.prepareHost(hostId, realm).catch((e: unknown) => {
    s.log.warn({ err: e, hostId }, 'data path: could not prepare the host; it runs without a data path');
    return undefined;
  });
}

/** What a host runs on besides its procs (Node, its modules, the data path): added to a dedicated proc's memory. */
export const HOST_BASELINE_MB = 128;
/** Processes and threads one host may have (Node alone runs about a dozen threads). */
export const HOST_PIDS_MAX = 256;
/** The CPU weight of best-effort work, in millicores: below any LC reservation. */
export const BE_WEIGHT_MCPU = 50;

/**
 * A dedicated host is sized to its proc: its reserved memory (plus Node's own) and a CPU weight from its
 * reserved millicores. A shared host of a realm may use the node's memory; its LC host runs at the
 * weight of one core (procs there share it). BE hosts, shared or dedicated, run idle: on what is left.
 */
export function hostLimits(s: NodeState, order: RunOrder | undefined): HostLimits {
  const spec = order?.spec;
  const be = spec?.lc === false;
  const mcpu = be ? BE_WEIGHT_MCPU : MCPU_PER_CORE;
  if (spec === undefined || !spec.dedicated) return { memMb: s.cfg.memMb, mcpu, pidsMax: HOST_PIDS_MAX, ...(be ? { idle: true } : {}) };
  return { memMb: spec.memMb + HOST_BASELINE_MB, mcpu: spec.lc ? spec.mcpu : BE_WEIGHT_MCPU, pidsMax: HOST_PIDS_MAX, ...(be ? { idle: true } : {}) };
}
const MCPU_PER_CORE = 1000;

function startHost(s: NodeState, key: string, realm: string): void {
  const hostId = `${s.cfg.id}-h${s.hostSeq++}`;
  const dp = s.dp;
  // The realm's pool and the host's data-path connection exist before the fork: the pool fd is inherited.
  const wired = dp === undefined ? Promise.resolve(undefined) : prepareDataPath(s, dp, hostId, realm);
  wired
    .then((wiring) =>
      s.deps.launcher.start(hostId, realm, { ...(wiring === undefined ? {} : { fds: wiring.fds }), limits: hostLimits(s, s.starting.get(key)?.[0]) }).then(
        (handle) => ({ handle, wiring }),
        (e: unknown) => {
          if (wiring !== undefined) dp?.hostGone(hostId);
          throw e;
        },
      ),
    )
    .then(
      // A host that comes up after this node manager stopped has nobody to answer to: kill it.
      ({ handle, wiring }) => {
        if (s.ctx.self.tryTell({ type: 'host-up', key, handle, ...(wiring === undefined ? {} : { wiring }) })._tag === 'Left') handle.kill();
      },
      (e: unknown) => s.ctx.self.tell({ type: 'host-failed', key, error: describe(e) }),
    );
}

function runOn(s: NodeState, hostId: string, order: RunOrder): void {
  const h = s.hosts.get(hostId);
  const p = s.procs.get(order.pid);
  assert(h !== undefined && p !== undefined, `a proc runs on a live host and is known: ${order.pid} on ${hostId}`);
  assert(h.realm === order.spec.realm, `host ${hostId} serves realm ${h.realm}, not ${order.spec.realm}`);
  h.procs.add(order.pid);
  p.hostId = hostId;
  const endpoint = s.dp?.openEndpoint(hostId, order.spec.exports);
  if (endpoint !== undefined) p.endpoint = endpoint;
  traceSpawn('node.to-host', order.pid);
  h.handle.send({ t: 'run', pid: order.pid, modulePath: order.modulePath, args: order.spec.args, realm: order.spec.realm, ...(endpoint === undefined ? {} : { endpoint }) });
}

export function place(s: NodeState, order: RunOrder): void {
  const realm = order.spec.realm;
  const key = order.spec.dedicated ? `${DEDICATED}${order.pid}` : `${SHARED}${sharedKey(order.spec)}`;
  const hostId = order.spec.dedicated ? undefined : s.shared.get(sharedKey(order.spec));
  if (hostId !== undefined) return runOn(s, hostId, order);
  const waiting = s.starting.get(key);
  if (waiting !== undefined) return void waiting.push(order);
  s.starting.set(key, [order]);
  startHost(s, key, realm);
}

export function hostUp(s: NodeState, m: Extract<NodeMsg, { type: 'host-up' }>): void {
  const { handle: hh } = m;
  const orders = s.starting.get(m.key) ?? [];
  s.starting.delete(m.key);
  const dedicated = m.key.startsWith(DEDICATED) ? m.key.slice(DEDICATED.length) : undefined;
  const shared = m.key.startsWith(SHARED) ? m.key.slice(SHARED.length) : undefined;
  assert((dedicated === undefined) !== (shared === undefined), `a host key is dedicated or shared: ${m.key}`);
  s.hosts.set(hh.hostId, { handle: hh, realm: hh.realm, procs: new Set(), tainted: false, pingsMissed: 0, ...(dedicated === undefined ? {} : { dedicatedTo: dedicated }), ...(shared === undefined ? {} : { sharedKey: shared }) });
  if (shared !== undefined) s.shared.set(shared, hh.hostId);
  if (m.wiring !== undefined && !s.dp?.attachHost(m.wiring, hh)) s.dp?.hostGone(hh.hostId);
  hh.onMessage((msg) => s.ctx.self.tell({ type: 'host-msg', hostId: hh.hostId, msg }));
  hh.onExit((code, signal, reason) => s.ctx.self.tell({ type: 'host-exit', hostId: hh.hostId, detail: reason ?? `exit code ${code}, signal ${signal}` }));
  for (const o of orders) if (s.procs.has(o.pid)) runOn(s, hh.hostId, o);
}

export function hostFailed(s: NodeState, key: string, error: string): void {
  for (const o of s.starting.get(key) ?? []) s.ops.exited(o.pid, { kind: 'crashed', message: `could not start a proc host: ${error}` });
  s.starting.delete(key);
}

export function hostGone(s: NodeState, hostId: string, detail: string): void {
  const h = s.hosts.get(hostId);
  if (h === undefined) return;
  unshare(s, hostId);
  s.hosts.delete(hostId);
  for (const pid of [...h.procs]) {
    const evicting = s.procs.get(pid)?.evictTimer !== undefined;
    s.ops.exited(pid, evicting ? { kind: 'evicted', message: 'evicted (host stopped)' } : { kind: 'crashed', message: `proc host ${hostId} died: ${detail}` });
  }
  s.dp?.hostGone(hostId);
}

/** Its hosts go (the busy ones once empty, like a tainted host): the last one frees the realm's pool. */
export function realmRemoved(s: NodeState, realm: string): void {
  for (const [id, h] of s.hosts) {
    if (h.realm !== realm) continue;
    unshare(s, id);
    h.tainted = true;
    if (h.procs.size === 0) h.handle.kill();
  }
}

