import { assert } from '../assert.js';
import type { Random } from '../ports/types.js';
import type { SimCluster } from './nats-cluster.js';
import type { SimHost } from './host.js';
import type { LinkFaults } from './network.js';
import type { Monitor } from './monitor.js';
import type { World } from './world.js';

/**
 * Faults as data: a schedule is a list of these, each at a virtual time relative to the workload's
 * start and (most) lasting `durationMs`, after which it is healed. Being data, a schedule can be
 * written into a trace, replayed, and shrunk by dropping entries.
 */
export type Fault =
  | { kind: 'node-crash'; atMs: number; durationMs: number; node: string }
  | { kind: 'host-crash'; atMs: number; node: string; pick: number }
  | { kind: 'host-hang'; atMs: number; durationMs: number; node: string; pick: number }
  | { kind: 'proc-crash'; atMs: number; node: string; pick: number }
  | { kind: 'net'; atMs: number; durationMs: number; node: string; faults: LinkFaults }
  | { kind: 'partition'; atMs: number; durationMs: number; nodes: string[] }
  | { kind: 'nats-down'; atMs: number; durationMs: number }
  | { kind: 'clock-skew'; atMs: number; durationMs: number; node: string; offsetMs: number; rate: number }
  | { kind: 'slow-kv'; atMs: number; durationMs: number; node: string; delayMs: number }
  /** A simulated cluster's server killed (-9), restarted after durationMs; `server` is 's1'.. or STORE_LEADER + a store. */
  | { kind: 'nats-server-crash'; atMs: number; durationMs: number; server: string }
  /** A simulated cluster's server cut off from the others (a minority), healed after durationMs. */
  | { kind: 'nats-server-partition'; atMs: number; durationMs: number; server: string };

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['node-crash', 'host-crash', 'host-hang', 'proc-crash', 'net', 'partition', 'nats-down', 'clock-skew', 'slow-kv', 'nats-server-crash', 'nats-server-partition'];

/** Bound on faults in one schedule (a nemesis, a scenario or a trace file asking for more is refused). */
export const FAULTS_MAX = 200;

export class FaultScheduleError extends Error {
  readonly type = 'fault-schedule';
  constructor(detail: string) {
    super(`fault schedule: ${detail}`);
    this.name = 'FaultScheduleError';
  }
}

/** A fault target resolved when the fault fires: the node holding the scheduler lease at that moment. */
export const LEADER = '@leader';
/** A server target resolved when the fault fires: '@store:KV_sigma_procs' is the server leading that bucket then. */
export const STORE_LEADER = '@store:';

/** Checks a schedule read from outside (a trace file): kinds known, times finite, nodes existing. */
export function checkSchedule(faults: unknown[], nodes: readonly string[]): Fault[] {
  if (faults.length > FAULTS_MAX) throw new FaultScheduleError(`${faults.length} faults, at most ${FAULTS_MAX}`);
  return faults.map((f, i) => {
    const x = f as Partial<Fault> & Record<string, unknown>;
    if (!FAULT_KINDS.includes(x.kind as FaultKind)) throw new FaultScheduleError(`fault ${i}: unknown kind ${String(x.kind)}; known: ${FAULT_KINDS.join(', ')}`);
    if (!(typeof x.atMs === 'number' && x.atMs >= 0)) throw new FaultScheduleError(`fault ${i}: atMs must be a number >= 0`);
    for (const n of [x['node'], ...((x['nodes'] as unknown[] | undefined) ?? [])]) if (n !== undefined && n !== LEADER && !nodes.includes(n as string)) throw new FaultScheduleError(`fault ${i}: no node ${String(n)}`);
    const server = x['server'];
    if (server !== undefined && !(typeof server === 'string' && (/^s\d+$/.test(server) || server.startsWith(STORE_LEADER)))) throw new FaultScheduleError(`fault ${i}: server must be s1, s2, ... or ${STORE_LEADER}<store>, got ${String(server)}`);
    return x as Fault;
  });
}

/** Delay added to every JetStream/KV message of a node under 'slow-kv' (the network hook). */
export interface FaultState {
  slowKvMs: Map<string, number>;
}

/**
 * Applies a schedule to a world on its virtual time, writing each fault and heal into the trace.
 * Faults that pick a host or a proc pick by index among what exists at that moment, so the same
 * schedule on the same seed picks the same victim.
 */
export class FaultController {
  readonly state: FaultState = { slowKvMs: new Map() };
  /** Partition depth per node: overlapping partitions heal only when the last one ends. */
  readonly #cut = new Map<string, number>();
  /** What '@leader' meant when each fault fired, so its heal undoes the same node. */
  readonly #resolved = new Map<Fault, string[]>();
  readonly #hung = new Map<Fault, SimHost>();
  #down = 0;
  /** Partition depth per simulated NATS server, as #cut is per node. */
  readonly #serverCut = new Map<number, number>();
  lastFaultEndMs = 0;

  constructor(
    private readonly w: World,
    private readonly monitor: Monitor,
  ) {
    const prev = w.nats.network.hook;
    w.nats.network.hook = (e) => {
      const base = prev?.(e);
      const slow = e.kind === 'js-api' ? this.state.slowKvMs.get(e.client) : undefined;
      return slow === undefined ? base : { ...base, delayMs: (base?.delayMs ?? 0) + slow };
    };
  }

  schedule(faults: readonly Fault[], startMs: number): void {
    for (const f of faults) {
      const end = startMs + f.atMs + ('durationMs' in f ? f.durationMs : 0);
      this.lastFaultEndMs = Math.max(this.lastFaultEndMs, end);
      this.w.ports.time.setTimeout(() => this.#apply(f), startMs + f.atMs - this.w.ports.time.nowMs());
      if ('durationMs' in f) this.w.ports.time.setTimeout(() => this.#heal(f), end - this.w.ports.time.nowMs());
    }
  }

  #note(what: string, f: Fault): void {
    this.monitor.trace.add(what, f.kind, 'node' in f ? f.node : 'nodes' in f ? f.nodes.join(',') : 'server' in f ? f.server : null);
  }

  #targets(f: Fault): string[] {
    if ('server' in f) return [this.#server(f.server)];
    const named = 'node' in f ? [f.node] : 'nodes' in f ? f.nodes : [];
    const leader = this.monitor.leader() ?? [...this.w.nodes.keys()][0]!;
    return [...new Set(named.map((n) => (n === LEADER ? leader : n)))];
  }

  /** A server name, '@store:X' resolved to the server leading X now (the first server while it has no leader). */
  #server(target: string): string {
    const c = this.w.nats.cluster;
    assert(c !== undefined, `a fault on NATS server ${target} needs a scenario on the replicated model (cluster: true)`);
    if (!target.startsWith(STORE_LEADER)) return target;
    return c.leaderName(target.slice(STORE_LEADER.length)) ?? c.servers[0]!.name;
  }

  #resolve(fault: Fault, targets: string[]): Fault {
    if ('node' in fault) return { ...fault, node: targets[0]! };
    if ('nodes' in fault) return { ...fault, nodes: targets };
    if ('server' in fault) return { ...fault, server: targets[0]! };
    return fault;
  }

  #apply(fault: Fault): void {
    const targets = this.#targets(fault);
    this.#resolved.set(fault, targets);
    const f = this.#resolve(fault, targets);
    this.#note('fault', f);
    const w = this.w;
    switch (f.kind) {
      case 'node-crash':
        return w.crash(f.node);
      case 'host-crash': {
        const hosts = w.nodes.get(f.node)!.launcher.live();
        if (hosts.length > 0) hosts[f.pick % hosts.length]!.kill();
        return;
      }
      case 'host-hang': {
        const hosts = w.nodes.get(f.node)!.launcher.live();
        const victim = hosts[f.pick % Math.max(1, hosts.length)];
        victim?.hang(true);
        if (victim !== undefined) this.#hung.set(fault, victim);
        return;
      }
      case 'proc-crash': {
        const procs = w.nodes.get(f.node)!.launcher.live().flatMap((h) => h.running.map((pid) => ({ h, pid })));
        if (procs.length > 0) {
          const v = procs[f.pick % procs.length]!;
          v.h.crashProc(v.pid);
        }
        return;
      }
      case 'net':
        return w.nats.setFaults(f.node, f.faults);
      case 'partition':
        for (const n of f.nodes) {
          this.#cut.set(n, (this.#cut.get(n) ?? 0) + 1);
          w.nats.partition(n, true);
        }
        return;
      case 'nats-down':
        this.#down++;
        w.nats.down = true;
        return;
      case 'clock-skew':
        return w.nodes.get(f.node)!.clock.skew(f.offsetMs, f.rate);
      case 'slow-kv':
        this.state.slowKvMs.set(f.node, (this.state.slowKvMs.get(f.node) ?? 0) + f.delayMs);
        return;
      case 'nats-server-crash':
        return this.#onServer(f.server, (c, i) => c.kill(i));
      case 'nats-server-partition':
        return this.#onServer(f.server, (c, i) => {
          this.#serverCut.set(i, (this.#serverCut.get(i) ?? 0) + 1);
          c.partition(i, true);
        });
    }
  }

  #heal(fault: Fault): void {
    const targets = this.#resolved.get(fault) ?? this.#targets(fault);
    const f = this.#resolve(fault, targets);
    this.#note('heal', f);
    const w = this.w;
    switch (f.kind) {
      case 'node-crash':
        return w.restart(f.node);
      case 'host-hang':
        this.#hung.get(fault)?.hang(false);
        return;
      case 'net':
        return w.nats.setFaults(f.node, undefined);
      case 'partition':
        for (const n of f.nodes) {
          const d = (this.#cut.get(n) ?? 1) - 1;
          this.#cut.set(n, d);
          if (d === 0) w.nats.partition(n, false);
        }
        return;
      case 'nats-down':
        if (--this.#down === 0) w.nats.down = false;
        return;
      case 'clock-skew':
        return w.nodes.get(f.node)!.clock.skew(0, 1);
      case 'slow-kv': {
        const left = (this.state.slowKvMs.get(f.node) ?? f.delayMs) - f.delayMs;
        if (left > 0) this.state.slowKvMs.set(f.node, left);
        else this.state.slowKvMs.delete(f.node);
        return;
      }
      case 'nats-server-crash':
        return this.#onServer(f.server, (c, i) => c.restart(i));
      case 'nats-server-partition':
        return this.#onServer(f.server, (c, i) => {
          const d = (this.#serverCut.get(i) ?? 1) - 1;
          this.#serverCut.set(i, d);
          if (d === 0) c.partition(i, false);
        });
      case 'host-crash':
      case 'proc-crash':
        return;
    }
  }

  #onServer(name: string, act: (c: SimCluster, i: number) => void): void {
    const c = this.w.nats.cluster!;
    act(c, c.indexOf(name));
  }

  /** Heals whatever is still in effect (before the settling period). */
  healAll(): void {
    const w = this.w;
    w.nats.down = false;
    this.#down = 0;
    for (const n of w.nodes.keys()) {
      w.nats.partition(n, false);
      w.nats.setFaults(n, undefined);
      w.nodes.get(n)!.clock.skew(0, 1);
      for (const h of w.nodes.get(n)!.launcher.live()) h.hang(false);
      w.restart(n);
    }
    this.#cut.clear();
    this.state.slowKvMs.clear();
    const c = w.nats.cluster;
    if (c !== undefined) for (let i = 0; i < c.servers.length; i++) {
      c.partition(i, false);
      c.restart(i);
    }
    this.#serverCut.clear();
  }
}

export interface NemesisOptions {
  /** Which kinds it may draw. */
  kinds: readonly FaultKind[];
  /** Faults drawn (at most FAULTS_MAX). */
  count: number;
  /** Faults start within [0, windowMs). */
  windowMs: number;
  /** Each lasts within [durationMsMin, durationMsMax). */
  durationMsMin?: number;
  durationMsMax?: number;
}

/**
 * The seeded random nemesis: draws a fault schedule from its own PRNG (so the workload's draws do not
 * move when a fault is added or shrunk away). Clock rates stay within ±10 % and slow KV under the
 * lease's margin unless the scenario asks for worse with its own schedule.
 */
export function nemesis(r: Random, nodes: readonly string[], o: NemesisOptions): Fault[] {
  if (o.count > FAULTS_MAX) throw new FaultScheduleError(`nemesis asked for ${o.count} faults, at most ${FAULTS_MAX}`);
  const out: Fault[] = [];
  const dMin = o.durationMsMin ?? 200;
  const dMax = o.durationMsMax ?? 3_000;
  for (let i = 0; i < o.count; i++) {
    const kind = o.kinds[r.int(o.kinds.length)]!;
    const atMs = r.int(o.windowMs);
    const durationMs = dMin + r.int(Math.max(1, dMax - dMin));
    const node = nodes[r.int(nodes.length)]!;
    const pick = r.int(1_000);
    switch (kind) {
      case 'node-crash': out.push({ kind, atMs, durationMs, node }); break;
      case 'host-crash': out.push({ kind, atMs, node, pick }); break;
      case 'host-hang': out.push({ kind, atMs, durationMs, node, pick }); break;
      case 'proc-crash': out.push({ kind, atMs, node, pick }); break;
      case 'net': out.push({ kind, atMs, durationMs, node, faults: { delayMs: r.int(20), jitterMs: r.int(30), dropRate: r.next() * 0.2, duplicateRate: r.next() * 0.2, reorder: r.next() < 0.5 } }); break;
      case 'partition': out.push({ kind, atMs, durationMs, nodes: nodes.filter(() => r.next() < 0.4).concat(node).filter((n, j, a) => a.indexOf(n) === j).sort() }); break;
      case 'nats-down': out.push({ kind, atMs, durationMs: Math.min(durationMs, 2_000) }); break;
      case 'clock-skew': out.push({ kind, atMs, durationMs, node, offsetMs: r.int(5_000), rate: 0.9 + r.next() * 0.2 }); break;
      case 'slow-kv': out.push({ kind, atMs, durationMs, node, delayMs: 10 + r.int(200) }); break;
      case 'nats-server-crash': out.push({ kind, atMs, durationMs, server: `s${1 + (pick % 3)}` }); break;
      case 'nats-server-partition': out.push({ kind, atMs, durationMs, server: `s${1 + (pick % 3)}` }); break;
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}
