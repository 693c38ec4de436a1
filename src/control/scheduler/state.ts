import type { Context } from '../../actors/index.js';
import type { Kv } from '../../nats/types.js';
import type { ProcSpec, Status } from '../../proc/types.js';
import type { Mutations } from '../mutations.js';
import { BeQueues, Placements } from '../placement.js';
import type { ProcTable } from '../proc-table.js';
import type { Ack, DeployedProgram, NodeRecord, NodeRequest, ProcEvent, ProcRecord, RealmQuota, RealmRecord, RunOrder, SpawnReply } from '../protocol/index.js';
import { BeNodes } from './be-nodes.js';
import { LiveProcs } from './live-procs.js';
import { Liveness } from '../liveness.js';

export interface SchedulerDeps {
  table: ProcTable;
  /** Sends a request to a node manager; resolves once the node has accepted it. */
  toNode(node: string, req: NodeRequest): Promise<void>;
  /** Fire-and-forget note to a node manager (`created`, `cancel`): nothing waits for an answer. */
  tellNode(node: string, req: NodeRequest): void;
  /** The node running in the scheduler's own process: its orders need no NATS hop, so BE procs try it first. */
  localNode?: string;
  /** Program name -> module path (built-in and configured programs, on every node's disk). */
  programs: Readonly<Record<string, string>>;
  /** Deployed programs of each realm (src/programs/store.ts); absent in the simulator. */
  deployed?: { resolve(realm: string, name: string): Promise<DeployedProgram | undefined> };
  /** Fencing token of this leadership (the lease's revision). Part of every pid, so pids never repeat. */
  term: number;
  realmsKv: Kv;
  namesKv: Kv;
  nodesKv: Kv;
  /** Each realm's journal bucket, made and removed with the realm (src/control/realm-journals.ts); absent in the simulator. */
  journals?: RealmJournals;
  /**
   * A node not heard from (heartbeat) for this long is down and its procs are lost. The scheduler
   * judges by its own clock: in NATS 2.9 an entry expiring by bucket TTL produces no watch event.
   */
  nodeTimeoutMs: number;
  /** The heartbeats this process saw before it led (a copy at `nowMs`): a recovery starts its liveness from them. */
  seen?: (nowMs: number) => Liveness;
  /** Simulator mutants (src/control/mutations.ts); none in production. */
  mutations?: Mutations;
}

/** Makes and removes a realm's journal (src/control/protocol/journal.ts). Both are idempotent. */
export interface RealmJournals {
  create(realm: string): Promise<void>;
  remove(realm: string): Promise<void>;
}

export type AckReply = (r: Ack) => void;

/** A spawn's idempotency key, as its request carried it. */
export interface Idempotency {
  key: string;
  /** Not known to be new: a retry, or a key of the caller's own (takes the checked path). */
  repeat: boolean;
}

export type SchedulerMsg =
  | { type: 'recovered'; records: ProcRecord[]; nodes: NodeRecord[]; realms: string[]; quotas: Array<[string, RealmQuota]> }
  | { type: 'recover-failed'; error: unknown }
  /** `receivedAtMs`: when the request arrived (scheduler clock), from which its `timeLeftMs` counts. */
  | { type: 'spawn'; input: unknown; receivedAtMs: number; reply: (r: SpawnReply) => void }
  | { type: 'spawn-resolved'; spec: ProcSpec; program: DeployedProgram | undefined; idem: Idempotency | undefined; expiresAtMs: number; error?: unknown; reply: (r: SpawnReply) => void }
  | { type: 'evict'; pid: string; graceMs: number; reply: AckReply }
  | { type: 'proc-event'; ev: ProcEvent }
  | { type: 'node-up'; node: NodeRecord }
  | { type: 'tick' }
  | { type: 'node-down'; id: string }
  /** A realm's record written (present) or deleted, as the realms watch saw it, in the bucket's order. */
  | { type: 'realm-seen'; name: string; present: boolean }
  /**
   * A realm this scheduler did not know of, as its record read now says (`record` absent: none; `error`:
   * not read), and what was waiting on that: see realms.ts, checkRealm.
   */
  | { type: 'realm-checked'; name: string; record?: RealmRecord; error?: unknown; then: (known: boolean | Error) => void }
  | { type: 'realm-create'; name: string; quota?: RealmQuota; reply: AckReply }
  | { type: 'realm-quota'; name: string; quota: RealmQuota; reply: AckReply }
  | { type: 'realm-remove'; name: string; reply: AckReply }
  /** `checked`: the order waited for the create (a spawn that may repeat a key), and goes out now. */
  | { type: 'created'; record: ProcRecord; revision: number; reply: (r: SpawnReply) => void; checked?: boolean }
  | { type: 'create-failed'; record: ProcRecord; error: unknown; reply: (r: SpawnReply) => void }
  /** A checked create found the pid's record there: a repeated key, answered with that pid. */
  | { type: 'create-exists'; record: ProcRecord; reply: (r: SpawnReply) => void }
  | { type: 'run-taken'; pid: string };

export interface Queued {
  realm: string;
  record: ProcRecord;
}

/**
 * Everything one scheduler incarnation knows. Placement state changes synchronously in receive();
 * table writes and node orders are launched and their results come back as messages.
 */
export class SchedulerState {
  readonly placements: Placements;
  readonly be = new BeQueues<Queued>();
  /** LC procs accepted while no node had room: placed, oldest first, when room appears. */
  readonly lcPending: ProcRecord[] = [];
  /** BE slots and BE procs per node, with the index of nodes that have a free slot (src/control/scheduler/be-nodes.ts). */
  readonly beNodes: BeNodes;
  /** Accepted, not yet exited; with each realm's share, for its quota. */
  readonly live = new LiveProcs();
  /** Realms with a quota. */
  readonly quotas = new Map<string, RealmQuota>();
  /**
   * Records whose create is in flight, with a terminal status decided meanwhile (node down, order
   * refused): it is applied once the record exists, since a CAS on an absent record writes nothing.
   */
  readonly creating = new Map<string, Status | undefined>();
  /**
   * Evictions sent while the proc's run order may still be on its way: a node that does not have
   * the proc yet answers unknown-proc, so the eviction goes again once the node has taken the order.
   */
  readonly evictWanted = new Map<string, number>(); // pid -> grace ms
  /** Repeats of a keyed spawn whose create is in flight: answered with its outcome. */
  readonly repeats = new Map<string, Array<(r: SpawnReply) => void>>();
  /** Realm -> callers waiting for its removal. */
  readonly removing = new Map<string, AckReply[]>();
  /** Node liveness by heartbeats (scheduler clock); recovery may start it from what this process saw as a standby. */
  liveness: Liveness;
  /** Node -> live procs recovery found there although its snapshot did not show the node: adopted at its heartbeat, lost at its timeout. */
  readonly unconfirmed = new Map<string, ProcRecord[]>();
  beatsFlowingSinceMs = 0;
  realms = new Set<string>();
  /** False once this incarnation stopped: KV calls still under way write nothing more. */
  active = true;
  /** How one concern reaches another (filled in by the actor once all exist: no import cycles). */
  readonly ops = {} as SchedulerOps;
  #seq = 0;

  constructor(
    readonly deps: SchedulerDeps,
    readonly ctx: Context<SchedulerMsg>,
  ) {
    this.placements = new Placements({ overcommit: deps.mutations?.lcOvercommit === true });
    this.beNodes = new BeNodes(this.placements);
    this.liveness = new Liveness(deps.nodeTimeoutMs);
  }

  get log(): Context<SchedulerMsg>['log'] {
    return this.ctx.log;
  }

  nowMs(): number {
    return this.ctx.ports.clock.nowMs();
  }

  /** The next pid of this term: realm first, so a realm's pids are found by prefix. */
  nextPid(spec: ProcSpec): string {
    return `${spec.realm}.${this.deps.term.toString(36)}-${(this.#seq++).toString(36)}`;
  }

  /** Each node's BE slots, in the order nodes came (read-only: changed through beNodes, which keeps its index). */
  get credits(): ReadonlyMap<string, number> {
    return this.beNodes.credits;
  }

  get beOn(): ReadonlyMap<string, number> {
    return this.beNodes.beOn;
  }

  /** One BE proc more (delta 1) or fewer (-1) on `node`. */
  countBe(node: string, delta: 1 | -1): void {
    this.beNodes.count(node, delta);
  }

  order(r: ProcRecord, revision?: number): RunOrder {
    const modulePath = r.program === undefined ? this.deps.programs[r.spec.program]! : '';
    return { pid: r.pid, spec: r.spec, modulePath, ...(r.program === undefined ? {} : { program: r.program }), ...(revision === undefined ? {} : { record: r, revision }) };
  }
}

/** What the scheduler's concerns (placing, exits, evictions, realms, nodes) ask of each other. */
export interface SchedulerOps {
  accept(rec: ProcRecord, reply: (r: SpawnReply) => void): void;
  dispatch(r: ProcRecord, node: string): void;
  drain(): void;
  finish(pid: string, status: Status): void;
  recordExit(pid: string, status: Status, attempt: number): void;
  onExit(pid: string, status: Status): void;
  evict(pid: string, graceMs: number, reply: AckReply): void;
  removePending(pid: string): boolean;
  realmGone(name: string): void;
}
