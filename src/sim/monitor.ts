import { BUCKET, decodeLeaseRecord, decodeProcRecord, type ProcRecord } from '../control/protocol/index.js';
import type { Status } from '../proc/types.js';
import type { DataPathObserver } from './datapath.js';
import type { HostObserver, SimHost } from './host.js';
import type { SimStore, Stored } from './nats-jetstream.js';
import type { SimPools } from './pools.js';
import type { Trace } from './trace.js';

/** A broken invariant: which one, when (virtual ms) and what happened. */
export interface Violation {
  invariant: string;
  atMs: number;
  message: string;
}

/** Violations kept per run; past it only the count grows (one bug tends to repeat). */
export const VIOLATIONS_KEPT_MAX = 50;

export interface MonitorConfig {
  nodeMcpu: number;
  /** The lease's TTL: a scheduler acting later than this after its last renewal acts without a lease. */
  leaseTtlMs: number;
  /** The client whose KV call the server is applying, and when it issued it (the simulated NATS knows). */
  writer: () => { client: string; sentAtMs: number } | undefined;
}

const PROCS = `KV_${BUCKET.procs}`;
const LEADER = `KV_${BUCKET.leader}`;
const NAMES = `KV_${BUCKET.names}`;
const dec = new TextDecoder();

interface Term {
  term: number;
  holder: string;
  electedAtMs: number;
  renewedAtMs: number;
  /** Every write of the lease in this term (election and renewals), in order. */
  writesAtMs: number[];
}

/**
 * Watches a run from outside the system under test — the server's stores, the hosts, the client —
 * writes what it sees into the trace, and checks the invariants as events happen (and, via end(), at
 * the end). It never reads the actors' own state, so a bug in that state cannot hide itself.
 */
export class Monitor implements HostObserver, DataPathObserver {
  readonly violations: Violation[] = [];
  violationCount = 0;
  /** Every invariant that fired in the run (violations past VIOLATIONS_KEPT_MAX are not kept, their names are). */
  readonly invariantsViolated = new Set<string>();
  /** Latest proc record per pid, as the server stores it. */
  readonly procs = new Map<string, ProcRecord>();
  /** Statuses hosts reported per pid (what the proc itself said). */
  readonly reported = new Map<string, Status[]>();
  readonly names = new Map<string, string>();
  /** pid -> uid of the live host running it. */
  readonly #runningOn = new Map<string, { uid: string; node: string }>();
  /** The same, per node: node -> pids its live hosts run (the LC check looks at one node). */
  readonly #onNode = new Map<string, Set<string>>();
  #term: Term | undefined;
  readonly terms: Term[] = [];

  constructor(
    private readonly now: () => number,
    readonly trace: Trace,
    private readonly cfg: MonitorConfig,
  ) {}

  /** Set once the end-of-run checks ran: the shutdown that follows is not judged. */
  closed = false;

  violate(invariant: string, message: string): void {
    if (this.closed) return;
    this.violationCount++;
    this.invariantsViolated.add(invariant);
    this.trace.add('violation', invariant, message);
    if (this.violations.length < VIOLATIONS_KEPT_MAX) this.violations.push({ invariant, atMs: this.now(), message });
  }

  /** Hooks the server's stores (call before any bucket is opened). */
  store(s: SimStore): void {
    if (s.name === PROCS) s.taps.add((m) => this.#procWrite(m));
    else if (s.name === LEADER) s.taps.add((m) => this.#leaseWrite(m));
    else if (s.name === NAMES) s.taps.add((m) => this.#nameWrite(m));
  }

  /** A client issues a KV call: a create in the proc table is a scheduler acting under its term. */
  rpc(client: string, what: string): void {
    const prefix = `KV create ${BUCKET.procs}/`;
    if (this.closed || !what.startsWith(prefix)) return;
    const pid = what.slice(prefix.length);
    const term = termOfPid(pid);
    const cur = this.#term;
    this.trace.add('act', client, pid);
    if (cur === undefined) return;
    // A keyed pid (<realm>.k_<key>) names no term: the creator must then be the holder, in its lease.
    if (term === undefined) return this.#inLease(client, `created ${pid}`);
    const now = this.now();
    if (term !== cur.term) this.violate('one-scheduler', `${client} created ${pid} under term ${term} at ${now} ms, but term ${cur.term} (${cur.holder}) has held the lease since ${cur.electedAtMs} ms`);
    else this.#inLease(client, `created ${pid}`);
  }

  /** A scheduler act by `client`, now: it must hold the current term and be within its lease. */
  #inLease(client: string, what: string): void {
    const cur = this.#term;
    const now = this.now();
    if (cur === undefined) return;
    if (client !== cur.holder) this.violate('one-scheduler', `${client} ${what} at ${now} ms, but ${cur.holder} has held the lease (term ${cur.term}) since ${cur.electedAtMs} ms`);
    else if (now > cur.renewedAtMs + this.cfg.leaseTtlMs) this.violate('one-scheduler', `${client} ${what} at ${now} ms, after its lease (term ${cur.term}) lapsed at ${cur.renewedAtMs + this.cfg.leaseTtlMs} ms`);
  }

  /**
   * A scheduler act that reached the server now but was issued at `sentAtMs`: judged by when it was
   * issued — a delayed write is the network's doing, and the record's CAS keeps it from clashing with
   * a successor's. The issuer must then have held a live lease of some term.
   */
  #issuedInLease(client: string, sentAtMs: number, what: string): void {
    const ttl = this.cfg.leaseTtlMs;
    const held = this.terms.some((t) => t.holder === client && t.writesAtMs.some((w) => w <= sentAtMs && sentAtMs <= w + ttl));
    if (held) return;
    const newest = this.terms.filter((t) => t.holder === client).at(-1);
    this.violate('one-scheduler', `${client} ${what}, issued at ${sentAtMs} ms without a live lease${newest === undefined ? '' : ` (its term ${newest.term} last renewed at ${newest.renewedAtMs} ms)`}`);
  }

  #leaseWrite(m: Stored): void {
    const v = m.data.length === 0 ? undefined : decodeLeaseRecord(m.data);
    this.trace.add('lease', v?.holder ?? null, v?.term ?? null, m.seq);
    if (v === undefined || v.holder === '') {
      this.#term = undefined;
      return;
    }
    if (v.term === 0) {
      this.#term = { term: m.seq, holder: v.holder, electedAtMs: m.atMs, renewedAtMs: m.atMs, writesAtMs: [m.atMs] };
      this.terms.push(this.#term);
    } else if (this.#term !== undefined && v.term === this.#term.term) {
      this.#term.renewedAtMs = m.atMs;
      this.#term.writesAtMs.push(m.atMs);
    }
  }

  #nameWrite(m: Stored): void {
    const key = m.subject.slice(`$KV.${BUCKET.names}.`.length);
    const op = (m.headers?.['KV-Operation'] as string | undefined) ?? 'PUT';
    if (op === 'PUT') this.names.set(key, dec.decode(m.data));
    else this.names.delete(key);
  }

  #procWrite(m: Stored): void {
    const r = m.data.length === 0 ? undefined : decodeProcRecord(m.data);
    if (r === undefined) return;
    const prev = this.procs.get(r.pid);
    this.trace.add('proc', r.pid, r.state, r.node ?? null, r.status?.kind ?? null);
    // Only a scheduler moves a record from queued to starting (a dispatch): that is acting too.
    const by = this.cfg.writer();
    if (prev?.state === 'queued' && r.state === 'starting' && by !== undefined && !this.closed) this.#issuedInLease(by.client, by.sentAtMs, `dispatched ${r.pid} to ${r.node} (applied at ${this.now()} ms)`);
    if (prev?.state === 'exited') this.violate('terminal-once', `${r.pid}: a second write after its terminal status (${prev.status?.kind} then ${r.state}/${r.status?.kind ?? '-'})`);
    this.procs.set(r.pid, r);
  }

  /**
   * LC reservations, checked where they matter: the LC procs a node's live hosts run at once, less
   * those the table already calls ended (a 'lost' proc still running on a cut-off node holds nothing).
   */
  #checkLc(node: string, pid: string): void {
    let used = 0;
    for (const p of this.#onNode.get(node) ?? []) {
      const r = this.procs.get(p);
      if (r !== undefined && r.spec.lc && r.state !== 'exited') used += r.spec.mcpu;
    }
    if (used > this.cfg.nodeMcpu) this.violate('lc-capacity', `node ${node} runs ${used} mcpu of LC procs at once (capacity ${this.cfg.nodeMcpu}) since ${pid} started`);
  }

  hostUp(node: string, h: SimHost): void {
    this.trace.add('host-up', node, h.uid, h.realm);
  }

  /** The node manager closed endpoints (after their linger, or with their host): what the pool gave back. */
  reclaimed(node: string, realm: string, endpoints: number, buffers: number, afterCrash: boolean): void {
    this.trace.add('reclaim', node, realm, endpoints, buffers, afterCrash);
  }

  poolFreed(node: string, realm: string): void {
    this.trace.add('pool-freed', node, realm);
  }

  hostDown(node: string, h: SimHost): void {
    this.trace.add('host-down', node, h.uid);
    for (const pid of [...(this.#onNode.get(node) ?? [])]) this.#stopped(pid, h.uid);
  }

  procRun(node: string, h: SimHost, pid: string): void {
    this.trace.add('run', node, h.uid, pid);
    const other = this.#runningOn.get(pid);
    if (other !== undefined && other.uid !== h.uid) this.violate('single-run', `${pid} started on ${h.uid} while still running on ${other.uid}`);
    if (other !== undefined) this.#stopped(pid, other.uid);
    this.#runningOn.set(pid, { uid: h.uid, node });
    const set = this.#onNode.get(node) ?? new Set<string>();
    this.#onNode.set(node, set.add(pid));
    this.#checkLc(node, pid);
  }

  /** When a host last reported a proc's exit (virtual ms): its endpoint lingers from then. */
  lastExitMs = 0;

  procExit(node: string, h: SimHost, pid: string, status: Status): void {
    this.lastExitMs = this.now();
    this.trace.add('exit', node, h.uid, pid, status.kind);
    this.#stopped(pid, h.uid);
    const list = this.reported.get(pid) ?? [];
    list.push(status);
    this.reported.set(pid, list);
  }

  /** `pid` no longer runs on host `uid` (it exited, or the host died). */
  #stopped(pid: string, uid: string): void {
    const at = this.#runningOn.get(pid);
    if (at?.uid !== uid) return;
    this.#runningOn.delete(pid);
    this.#onNode.get(at.node)?.delete(pid);
  }

  /** The node holding the scheduler lease now, as the server's store says. */
  leader(): string | undefined {
    return this.#term?.holder;
  }

  /** Live-host check for pool ownership: which owners may still hold buffers. */
  running(): ReadonlyMap<string, { uid: string; node: string }> {
    return this.#runningOn;
  }

  /** The end-of-run invariants (after the faults healed and the cluster had time to settle). */
  end(o: { accepted: ReadonlySet<string>; waits: ReadonlyMap<string, Status>; removedRealms: ReadonlySet<string>; pools: SimPools; settleMs: number }): void {
    for (const pid of o.accepted) {
      const r = this.procs.get(pid);
      if (r === undefined) this.violate('accepted-terminal', `accepted spawn ${pid} has no record`);
      else if (r.state !== 'exited' || r.status === undefined) this.violate('liveness', `accepted spawn ${pid} is still ${r.state} ${o.settleMs} ms after the faults stopped`);
    }
    for (const [pid, s] of o.waits) {
      const r = this.procs.get(pid);
      if (r?.status === undefined || r.status.kind !== s.kind || r.status.message !== s.message) this.violate('wait-exit', `waitExit(${pid}) returned ${s.kind} but the table holds ${r?.status?.kind ?? 'nothing'}`);
      else if ((s.kind === 'ok' || s.kind === 'error') && !(this.reported.get(pid) ?? []).some((x) => x.kind === s.kind && x.message === s.message)) this.violate('wait-exit', `waitExit(${pid}) returned ${s.kind}, which the proc never reported`);
    }
    for (const realm of o.removedRealms) {
      const left = [...this.procs.values()].filter((r) => r.spec.realm === realm && r.state !== 'exited');
      if (left.length > 0) this.violate('realm-removal', `realm ${realm} was removed but ${left.length} procs remain (${left[0]!.pid} ${left[0]!.state})`);
      const names = [...this.names.keys()].filter((k) => k.startsWith(`${realm}.`));
      if (names.length > 0) this.violate('realm-removal', `realm ${realm} was removed but names remain: ${names.slice(0, 3).join(', ')}`);
    }
    const { buffers, problems } = o.pools.live();
    for (const p of problems) this.violate('pool', p);
    for (const p of o.pools.freedLive) this.violate('buffers-reclaimed', p);
    const leaked = buffers.filter((b) => b.pid === undefined || !this.#runningOn.has(b.pid));
    this.trace.add('buffers', buffers.length, leaked.length);
    for (const b of leaked.slice(0, 5)) this.violate('buffers-reclaimed', `buffer at ${b.pool}+${b.offset} is still owned by ${b.pid ?? `owner ${b.owner}`}, which no live host runs`);
    for (const realm of o.removedRealms) {
      const held = buffers.filter((b) => b.pool.endsWith(`/${realm}`));
      if (held.length > 0) this.violate('realm-removal', `realm ${realm} was removed but ${held.length} of its buffers are still held`);
    }
    this.closed = true;
  }
}

/** The scheduler term a pid was issued under (`<realm>.<term base36>-<seq base36>`). */
export function termOfPid(pid: string): number | undefined {
  const dot = pid.lastIndexOf('.');
  const dash = pid.lastIndexOf('-');
  if (dot < 0 || dash < dot) return undefined;
  const t = parseInt(pid.slice(dot + 1, dash), 36);
  return Number.isFinite(t) ? t : undefined;
}
