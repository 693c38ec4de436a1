import type { Context } from '../../actors/index.js';
import type { ProcTable } from '../../control/proc-table.js';
import type { NodeIsolation, NodeRecord, ProcEvent, ProcRecord, RunOrder, WireError } from '../../control/protocol/index.js';
import type { ToNode } from '../../host/protocol.js';
import type { Kv } from '../../nats/types.js';
import type { Status } from '../../proc/types.js';
import type { TimerHandle } from '../../ports/types.js';
import type { DataPathPort, DataPathStatus, HostWiring } from '../datapath/port.js';
import type { HostHandle, HostLauncher } from '../host-process.js';

export interface NodeManagerConfig {
  id: string;
  mcpu: number;
  memMb: number;
  /** Actor system address of this node process. */
  address: string;
  /** Best-effort procs this node runs at once. */
  beSlots: number;
  /** False: its records say so, and the scheduler places nothing here. */
  procs: boolean;
  heartbeatMs: number;
  /**
   * Hosts are pinged every this many heartbeats: a host that dies is seen at once by its process exit,
   * pings only find a hung one, and each wakes an idle host (idle cost grows with warm hosts).
   */
  hostPingEveryBeats: number;
  /** A host that misses this many pings in a row (any message from it counts as an answer) is killed and its procs end as crashed. */
  hostPingMissesMax: number;
  /**
   * With heartbeats on core NATS (deps.beat), the nodes bucket gets every this many of them, and any
   * that changes the record: liveness rides the core beats, and each KV write wakes nats-server's
   * store and every watcher of the bucket (idle cost). 1: every heartbeat.
   */
  recordEveryBeats: number;
  /** What the heartbeat says of its hosts' confinement (absent in the simulator). */
  isolation?: NodeIsolation;
  /** Simulator mutant only (src/control/mutations.ts): the exit write loses its write-once guard. */
  exitTwice?: boolean;
  /** Simulator mutant only: each batch of lingering endpoints closed forgets its first one (never reclaimed). */
  forgetLingering?: boolean;
  /** Simulator mutant only: a repeated run order for a proc this node already has starts it again. */
  rerunRepeatedOrder?: boolean;
}

export interface NodeManagerDeps {
  launcher: HostLauncher;
  table: ProcTable;
  nodesKv: Kv;
  namesKv: Kv;
  publish(ev: ProcEvent): void;
  /** The heartbeat on core NATS (NODE_BEAT), for the scheduler's liveness; absent: the KV record only. */
  beat?(node: NodeRecord): void;
  /** An exit event the scheduler acknowledges (rejects when none did in time). */
  reportExit(ev: Extract<ProcEvent, { type: 'exited' }>): Promise<void>;
  appendLog(pid: string, stream: 'stdout' | 'stderr', data: string): void;
  /** Deployed programs' bundles as files hosts load (fetched on first use, cached by hash). */
  programs?: ProgramFiles;
  /** The node's data path (pools, endpoints, BPF maps or hub); src/sim/datapath.ts in the simulator. */
  datapath?: DataPathPort;
}

/** Where a host of `realm` finds the bundle `hash`: a file in that realm's cache, fetched if missing. */
export interface ProgramFiles {
  path(realm: string, hash: string, chunk?: string): Promise<string>;
}

export type NodeMsg =
  | { type: 'run'; order: RunOrder; reply: (error?: WireError) => void }
  | { type: 'evict'; pid: string; graceMs: number; reply: (error?: WireError) => void }
  | { type: 'host-up'; key: string; handle: HostHandle; wiring?: HostWiring }
  | { type: 'datapath-status'; reply: (s: DataPathStatus | undefined) => void }
  | { type: 'status-deadline'; waiter: StatusWaiter }
  | { type: 'dp-close' }
  /** A call from the node process into the data path (`sigma call`; the gateway's path). */
  | { type: 'datapath-call'; realm: string; target: string; payload: string; timeoutMs: number; reply: (r: { ok: true; answer: string } | { ok: false; error: WireError }) => void }
  | { type: 'realm-removed'; realm: string; reply: (error?: WireError) => void }
  | { type: 'host-failed'; key: string; error: string }
  | { type: 'host-msg'; hostId: string; msg: ToNode }
  | { type: 'host-exit'; hostId: string; detail: string }
  | { type: 'force-evict'; pid: string }
  | { type: 'mark-running'; pid: string }
  | { type: 'created'; pid: string; revision: number }
  | { type: 'cancel'; pid: string; term?: number }
  | { type: 'program-ready'; pid: string; modulePath?: string; error?: string }
  | { type: 'tick' };

export interface Host {
  handle: HostHandle;
  realm: string;
  procs: Set<string>;
  dedicatedTo?: string;
  /** A shared host: which (`<realm>/lc` or `<realm>/be`). */
  sharedKey?: string;
  /** A forced eviction left code running in it: take no new procs, retire once empty. */
  tainted: boolean;
  pingsMissed: number;
}

export interface Proc {
  order: RunOrder;
  hostId?: string;
  evictTimer?: TimerHandle;
  kind?: 'function' | 'service';
  /** The record as last written and its revision, so our next write needs no read. */
  record?: ProcRecord;
  revision?: number;
  actorPath?: string;
  /**
   * The order came before its record was durable (RunOrder.pendingCreate): write nothing yet, and
   * start nothing: the create is where a spawn happens exactly once (a scheduler paused or killed
   * before its create landed is succeeded by one whose create of the same key wins).
   */
  awaitingCreate?: boolean;
  /** Ready to go to a host (its program fetched) but held until the record is known durable. */
  startHeld?: boolean;
  /** A `running` write held back until the record exists. */
  runningHeld?: boolean;
  /** Its record could not be created: the spawn was refused, so nothing is ever written for it. */
  cancelled?: boolean;
  /** Data-path endpoint, when its host has a data path. */
  endpoint?: number;
}

/** A `datapath-status` asked while the hosts it pinged report their counters (hosts report only when asked). */
export interface StatusWaiter {
  hosts: Set<string>;
  reply: (s: DataPathStatus | undefined) => void;
}

/** Everything one node manager knows about its hosts and procs. */
export class NodeState {
  readonly hosts = new Map<string, Host>();
  /** `<realm>/lc` and `<realm>/be` -> host id of the realm's shared host for that class. */
  readonly shared = new Map<string, string>();
  /** Host key -> orders waiting for that host to come up. */
  readonly starting = new Map<string, RunOrder[]>();
  readonly procs = new Map<string, Proc>();
  /**
   * A terminal status must reach the proc table even if NATS is away when the proc ends: failed
   * writes are kept and retried on every heartbeat until they land (the write is a CAS, so a status
   * recorded meanwhile by someone else — lost, by the scheduler — is left alone).
   */
  readonly unrecorded = new Map<string, { p: Proc; status: Status }>();
  /**
   * Procs that ended here, newest last (at most ENDED_REMEMBERED_MAX): an order for one again (a
   * successor's recovery resending a `starting` record's order whose exit it has not seen) is not run
   * twice; its exit is reported again instead.
   */
  readonly ended = new Map<string, Status>();
  /**
   * Procs started on the fast path whose record is not known to exist yet: pid -> heartbeats waited
   * and reads that found nothing. Cleared by the `created` note, a read that finds it, or `cancel`.
   */
  readonly awaiting = new Map<string, { p: Proc; heartbeats: number; reads: number }>();
  /** Exit events no scheduler has acknowledged yet, with the heartbeats they have been sent at. */
  readonly unreported = new Map<string, { status: Status; sends: number; inFlight: boolean; unrecorded: { unrecorded: true; term: number | undefined } | undefined }>();
  /** Endpoints of exited procs, oldest first, with the time each may go; closed in batches. */
  readonly lingering: Array<{ endpoint: number; atMs: number }> = [];
  readonly statusWaiters = new Set<StatusWaiter>();
  hostSeq = 0;
  heartbeatSeq = 0;
  /** The last record written to the nodes bucket, without its sequence number: a changed one is written at once. */
  recordWritten = '';
  pingSeq = 0;
  readonly startedAtMs: number;
  /** How one concern reaches another (filled in by the actor once all exist: no import cycles). */
  readonly ops = {} as NodeOps;

  constructor(
    readonly cfg: NodeManagerConfig,
    readonly deps: NodeManagerDeps,
    readonly ctx: Context<NodeMsg>,
  ) {
    this.startedAtMs = ctx.ports.clock.nowMs();
  }

  get log(): Context<NodeMsg>['log'] {
    return this.ctx.log;
  }

  get dp(): DataPathPort | undefined {
    return this.deps.datapath;
  }

  /** The host a proc runs in, if it is placed and the host is still up. */
  hostOf(p: Proc): Host | undefined {
    return p.hostId === undefined ? undefined : this.hosts.get(p.hostId);
  }
}

/** What the node manager's concerns (hosts, records, procs, data path) ask of each other. */
export interface NodeOps {
  exited(pid: string, status: Status): void;
  hostGone(hostId: string, detail: string): void;
  markRunning(pid: string, p: Proc): void;
  recordExit(pid: string, p: Proc, status: Status): void;
  lingerEndpoint(endpoint: number): void;
  /** To a host: the proc starts. */
  place(order: RunOrder): void;
}
