import { assert } from '../assert.js';
import type { Clock, Random, TimerHandle, Timers } from '../ports/types.js';

/**
 * A replicated JetStream for the simulator: three (by default) simulated nats-servers, every stream and
 * KV bucket a Raft group with a replica on each and one leader among them, as a real cluster runs
 * buckets and streams with replicas = 3. The stores themselves stay single objects (SimStore): they
 * hold the committed log; this class decides who may reach it, when, and what a client hears back.
 * Held to a real 3-server cluster by test/nats-cluster-contract.test.ts.
 *
 * What it models (measured on nats-server 2.9.10, test/helpers/nats-cluster.ts):
 * - A client is attached to one server. A killed server's clients are disconnected and reconnect to a
 *   live server after RECONNECT_MS_DEFAULT (the real binding's reconnect wait).
 * - A write goes client -> its server -> the group leader (one hop each way between servers) and is
 *   committed once a follower has it (a round trip from the leader); then it is applied and answered.
 * - The leader dies or is cut off: the group has no leader for an election timeout drawn from
 *   [ELECTION_MS_MIN_DEFAULT, ELECTION_MS_MAX_DEFAULT) (Raft's 4-9 s); meanwhile every call on it is
 *   answered "no responders" at once (what the real client gets). A write the dead leader had sent to a
 *   follower is committed by the next leader, unacknowledged (the client timed out; the write is
 *   there); one it had not sent is lost; an answer on its way back through a dead server is lost.
 * - A server cut off from the others (a minority) commits nothing: its clients' writes and reads time
 *   out. Where it led a group, it goes on answering KV gets (the real server's direct get) from its
 *   replica as of the moment it was cut, until it notices the lost quorum (LOST_QUORUM_MS): stale
 *   reads. Core messages cross only between servers that reach each other.
 * Where it knowingly differs: a follower's replica in the majority is never behind (direct gets there
 * see every committed write); watch and consumer deliveries take no server hop and simply pause while
 * the client's server is in a minority; a group's initial leader is placed round robin.
 */
export interface ClusterOptions {
  /** Servers in the cluster (odd, >= 3). Default CLUSTER_SERVERS_DEFAULT. */
  servers?: number;
  /** One-way delay between two servers, ms. */
  hopMs?: number;
  electionMsMin?: number;
  electionMsMax?: number;
  /** How long a client whose server died waits before it is attached to another. */
  reconnectMs?: number;
}

export const CLUSTER_SERVERS_DEFAULT = 3;
export const SERVER_HOP_MS_DEFAULT = 1;
/** nats-server's raft.go minElectionTimeoutDefault / maxElectionTimeoutDefault. */
export const ELECTION_MS_MIN_DEFAULT = 4_000;
export const ELECTION_MS_MAX_DEFAULT = 9_000;
/** src/nats/real.ts RECONNECT_WAIT_MS_DEFAULT. */
export const RECONNECT_MS_DEFAULT = 250;
/** nats-server's raft.go lostQuorumIntervalDefault: a leader cut off serves stale direct gets this long. */
export const LOST_QUORUM_MS = 10_000;
/** The group that creates streams and buckets (JetStream's meta leader). */
export const META_GROUP = '$meta';

/** How a call reaches the stores: a write through the leader and a follower, a read at the leader, a KV get at any replica. */
export type Access = 'write' | 'read' | 'direct';

/** How a call is served by the simulated cluster (SimNats.rpc). */
export interface RpcOptions<T> {
  /** Applied at once, without virtual time, while the server is reachable (opening a bucket or stream). */
  immediate?: boolean;
  /** The Raft group serving it: the stream's name, or the meta group (default) for creating one. */
  group?: string;
  access?: Access;
  /** A direct get served by a cut off server from its own frozen replica. */
  stale?: (server: number) => T;
}

export interface SimServer {
  readonly name: string;
  up: boolean;
  /** Cut off from every other server (its clients still reach it). */
  cut: boolean;
}

interface Proposal {
  /** When a follower had it: a leader lost after this leaves it to be committed by the next one. */
  reachedFollowerAtMs: number;
  execute: () => void;
}

interface Group {
  leader: number | undefined;
  term: number;
  election: TimerHandle | undefined;
  proposals: Set<Proposal>;
  /** Proposals a lost leader had replicated: committed (unacknowledged) by the next leader. */
  inherited: Proposal[];
}

/** What the cluster needs from the simulated NATS around it. */
export interface ClusterHost {
  /** The client's link is gone (its server died) or back (attached to another). */
  orphan(client: string, orphaned: boolean): void;
  /** Something changed who serves whom: followers of streams and watches look again. */
  kickAll(): void;
  /** Server `i` is cut off (freeze its replicas' view) or rejoins (thaw it). */
  freeze(i: number, frozen: boolean): void;
}

export class SimCluster {
  readonly servers: SimServer[];
  readonly hopMs: number;
  readonly #o: Required<Omit<ClusterOptions, 'servers' | 'hopMs'>>;
  readonly #groups = new Map<string, Group>();
  readonly #home = new Map<string, number>();
  readonly #orphaned = new Set<string>();
  /** Groups whose leader was cut off, and until when it still believes it leads them (serving stale gets). */
  readonly #staleLeaders = new Map<string, { server: number; untilMs: number }>();
  #attachNext = 0;
  #placeNext = 0;
  /** Elections won; writes a lost leader had replicated (committed unacknowledged) or not (lost): for reports and tests. */
  elections = 0;
  inheritedWrites = 0;
  droppedWrites = 0;

  constructor(
    private readonly ports: { clock: Clock; timers: Timers; random: Random },
    private readonly host: ClusterHost,
    o: ClusterOptions = {},
  ) {
    const n = o.servers ?? CLUSTER_SERVERS_DEFAULT;
    assert(Number.isInteger(n) && n >= 3 && n % 2 === 1, `a simulated cluster has an odd number >= 3 of servers, got ${n}`);
    this.servers = Array.from({ length: n }, (_, i) => ({ name: `s${i + 1}`, up: true, cut: false }));
    this.hopMs = o.hopMs ?? SERVER_HOP_MS_DEFAULT;
    this.#o = { electionMsMin: o.electionMsMin ?? ELECTION_MS_MIN_DEFAULT, electionMsMax: o.electionMsMax ?? ELECTION_MS_MAX_DEFAULT, reconnectMs: o.reconnectMs ?? RECONNECT_MS_DEFAULT };
    assert(this.#o.electionMsMin > 0 && this.#o.electionMsMax > this.#o.electionMsMin, 'election timeouts: 0 < min < max');
  }

  /** A client connects: to `server` if given and up, else the server it had, else the next up server round robin. */
  attach(client: string, server?: number): void {
    const had = server ?? this.#home.get(client);
    if (had !== undefined && this.servers[had]!.up) return void this.#home.set(client, had);
    const i = this.#pickUp(this.#attachNext++);
    if (i === undefined) {
      this.#orphaned.add(client);
      this.host.orphan(client, true);
      this.#reconnectLater(client);
      return;
    }
    this.#home.set(client, i);
  }

  serverOf(client: string): number | undefined {
    return this.#orphaned.has(client) ? undefined : this.#home.get(client);
  }

  #pickUp(from: number): number | undefined {
    const n = this.servers.length;
    for (let k = 0; k < n; k++) if (this.servers[(from + k) % n]!.up) return (from + k) % n;
    return undefined;
  }

  /** Up servers that reach each other (every cut server is alone). */
  #majoritySize(): number {
    return this.servers.filter((s) => s.up && !s.cut).length;
  }

  get hasQuorum(): boolean {
    return this.#majoritySize() * 2 > this.servers.length;
  }

  inMajority(i: number | undefined): boolean {
    if (i === undefined) return false;
    const s = this.servers[i]!;
    return s.up && !s.cut && this.hasQuorum;
  }

  /** Whether a client's server is in the majority (its JetStream calls can be served). */
  serves(client: string): boolean {
    return this.inMajority(this.serverOf(client));
  }

  /** Whether two servers pass messages to each other. */
  linked(a: number | undefined, b: number | undefined): boolean {
    if (a === undefined || b === undefined || !this.servers[a]!.up || !this.servers[b]!.up) return false;
    return a === b || (!this.servers[a]!.cut && !this.servers[b]!.cut);
  }

  #group(name: string): Group {
    let g = this.#groups.get(name);
    if (g === undefined) {
      const first = this.#placeNext++ % this.servers.length;
      const leader = this.inMajority(first) ? first : this.servers.findIndex((_, i) => this.inMajority(i));
      g = { leader: leader === -1 ? undefined : leader, term: 1, election: undefined, proposals: new Set(), inherited: [] };
      this.#groups.set(name, g);
      if (g.leader === undefined) this.#scheduleElection(g);
    }
    return g;
  }

  leaderOf(group: string): number | undefined {
    return this.#group(group).leader;
  }

  /**
   * A JetStream call that reached the client's server. `execute` applies it to the stores and returns
   * the answer; `answer` sends that answer down to the client; `stale` serves a direct get from a cut
   * off server's own (frozen) replica. Nothing is answered when the call cannot be served: the client
   * times out, as a real one does.
   */
  serve<T>(client: string, groupName: string, access: Access, execute: () => T, answer: (r: T) => void, noLeader: () => void, stale?: (server: number) => T): void {
    const s = this.serverOf(client);
    if (s === undefined || !this.servers[s]!.up) return;
    if (access === 'direct') {
      if (this.inMajority(s)) return answer(execute());
      const st = this.#staleLeaders.get(groupName);
      if (stale !== undefined && st?.server === s && this.ports.clock.nowMs() < st.untilMs) answer(stale(s));
      return;
    }
    if (!this.inMajority(s)) return;
    const g = this.#group(groupName);
    if (g.leader === undefined) return noLeader();
    const leader = g.leader;
    const term = g.term;
    this.#hop(s, leader, () => {
      if (g.term !== term || !this.inMajority(leader)) return;
      if (access === 'read') return this.#hop(leader, s, ((r: T) => () => answer(r))(execute()));
      this.#propose(g, term, leader, s, execute, answer);
    });
  }

  /** The leader sends the write to its followers; committed (applied, answered) when one has answered. */
  #propose<T>(g: Group, term: number, leader: number, origin: number, execute: () => T, answer: (r: T) => void): void {
    let result: T | undefined;
    const p: Proposal = { reachedFollowerAtMs: this.ports.clock.nowMs() + this.hopMs, execute: () => void execute() };
    g.proposals.add(p);
    this.ports.timers.setTimeout(() => {
      if (g.term !== term) return; // deposed meanwhile: the proposal was dropped or inherited
      g.proposals.delete(p);
      result = execute();
      this.#hop(leader, origin, () => answer(result as T));
    }, 2 * this.hopMs);
  }

  /** Runs `then` at server `to` one hop after `from` sent it, if the two still reach each other then. */
  #hop(from: number, to: number, then: () => void): void {
    if (from === to) return then();
    if (!this.linked(from, to)) return;
    this.ports.timers.setTimeout(() => {
      if (this.linked(from, to)) then();
    }, this.hopMs);
  }

  kill(i: number): void {
    const s = this.servers[i]!;
    if (!s.up) return;
    s.up = false;
    for (const [client, home] of this.#home) {
      if (home !== i || this.#orphaned.has(client)) continue;
      this.#orphaned.add(client);
      this.host.orphan(client, true);
      this.#reconnectLater(client);
    }
    this.#topologyChanged();
  }

  restart(i: number): void {
    const s = this.servers[i]!;
    if (s.up) return;
    s.up = true;
    this.#topologyChanged();
  }

  partition(i: number, cut: boolean): void {
    const s = this.servers[i]!;
    if (s.cut === cut) return;
    s.cut = cut;
    this.host.freeze(i, cut);
    const untilMs = this.ports.clock.nowMs() + LOST_QUORUM_MS;
    for (const [name, g] of this.#groups) {
      if (cut && g.leader === i) this.#staleLeaders.set(name, { server: i, untilMs });
      if (!cut && this.#staleLeaders.get(name)?.server === i) this.#staleLeaders.delete(name);
    }
    this.#topologyChanged();
  }

  #reconnectLater(client: string): void {
    this.ports.timers.setTimeout(() => {
      if (!this.#orphaned.has(client)) return;
      const i = this.#pickUp((this.#home.get(client) ?? 0) + 1);
      if (i === undefined) return this.#reconnectLater(client);
      this.#home.set(client, i);
      this.#orphaned.delete(client);
      this.host.orphan(client, false);
    }, this.#o.reconnectMs);
  }

  /** Leaders that lost the majority step down; leaderless groups elect once a quorum can. */
  #topologyChanged(): void {
    const now = this.ports.clock.nowMs();
    for (const g of this.#groups.values()) {
      if (g.leader !== undefined && !this.inMajority(g.leader)) {
        g.leader = undefined;
        g.term++;
        for (const p of g.proposals) {
          if (p.reachedFollowerAtMs <= now) g.inherited.push(p);
          else this.droppedWrites++;
        }
        g.proposals.clear();
      }
      if (g.leader === undefined) this.#scheduleElection(g);
    }
    this.host.kickAll();
  }

  #scheduleElection(g: Group): void {
    if (g.election !== undefined || !this.hasQuorum) return;
    const { electionMsMin: min, electionMsMax: max } = this.#o;
    g.election = this.ports.timers.setTimeout(() => this.#elect(g), min + this.ports.random.int(max - min));
  }

  #elect(g: Group): void {
    g.election = undefined;
    const candidates = this.servers.flatMap((_, i) => (this.inMajority(i) ? [i] : []));
    if (candidates.length === 0) return; // no quorum now: the next change schedules another
    g.leader = candidates[this.ports.random.int(candidates.length)]!;
    g.term++;
    this.elections++;
    // Raft commits what the old leader had replicated before it serves anything new.
    for (const p of g.inherited.splice(0)) {
      this.inheritedWrites++;
      p.execute();
    }
    this.host.kickAll();
  }

  /** For a fault target like '@store:KV_sigma_procs': the server leading that group now. */
  leaderName(group: string): string | undefined {
    const l = this.#groups.get(group)?.leader;
    return l === undefined ? undefined : this.servers[l]!.name;
  }

  indexOf(name: string): number {
    const i = this.servers.findIndex((s) => s.name === name);
    assert(i !== -1, `no simulated server ${name}`);
    return i;
  }
}
