import { pino, type Logger } from 'pino';
import { SigmaClient } from '../client/client.js';
import type { Mutations } from '../control/mutations.js';
import { startNode, type NodeTiming, type RunningNode } from '../node/node.js';
import type { Bus } from '../nats/types.js';
import { virtualPorts, type VirtualPorts } from '../ports/virtual.js';
import type { SeededRandom } from '../ports/random.js';
import { SimDataPath, type DataPathObserver } from './datapath.js';
import { SimHostLauncher, SIM_PROGRAMS, type HostObserver } from './host.js';
import { SimNats } from './nats.js';
import { SimPools } from './pools.js';
import { SkewedClock } from './skew.js';

/** Capacity of every simulated node. */
export const SIM_NODE = { mcpu: 2000, memMb: 4096, beSlots: 64 } as const;

/** One simulated node: its process (absent while crashed), its hosts and its clock. */
export interface SimNode {
  id: string;
  running: RunningNode | undefined;
  bus: Bus | undefined;
  launcher: SimHostLauncher;
  /** The data path of the current incarnation (pools, endpoints), driven by its node manager. */
  datapath: SimDataPath | undefined;
  clock: SkewedClock;
  random: SeededRandom;
  incarnation: number;
}

export interface World {
  seed: number;
  ports: VirtualPorts;
  nats: SimNats;
  pools: SimPools;
  nodes: Map<string, SimNode>;
  client: SigmaClient;
  /** Runs virtual time forward while `work` is pending, then returns its result. */
  during<T>(work: Promise<T>, ms: number): Promise<T>;
  /** Kills a node process outright: no lease release, no goodbyes; its hosts die with it. */
  crash(id: string): void;
  /** Starts a crashed node again (same id, fresh process); retried while NATS is unreachable. */
  restart(id: string): void;
}

export interface WorldOptions {
  nodes?: number;
  timing?: NodeTiming;
  logger?: Logger;
  mutations?: Mutations;
  observer?: HostObserver & Partial<DataPathObserver>;
  /** The replicated JetStream of three simulated servers instead of one. */
  cluster?: boolean;
  /** Called with the simulated NATS before any node connects (observers hook its stores here). */
  onNats?: (nats: SimNats) => void;
}

const NO_OBSERVER: HostObserver = { hostUp() {}, hostDown() {}, procRun() {}, procExit() {} };
const NO_DP_OBSERVER: DataPathObserver = { reclaimed() {}, poolFreed() {} };

/** Work given to World.during did not settle within its virtual-time bound. */
export class SimDeadlineError extends Error {
  readonly type = 'sim-deadline';
  constructor(readonly ms: number) {
    super(`simulated work did not settle within ${ms} virtual ms`);
    this.name = 'SimDeadlineError';
  }
}

/** Retry delay for a node restart that could not reach NATS. */
export const RESTART_RETRY_MS = 500;

/**
 * A whole cluster in one process: the real node managers, lease candidates and scheduler (the same
 * startNode() the node processes run), on one VirtualTime and one seeded PRNG, talking through the
 * simulated NATS. Each node sees time through a clock of its own (so it can be skewed) and runs its
 * procs in sim hosts whose buffers come from real pools of a simulated data path its node manager drives. Nothing here reads the real clock, so a
 * seed replays a run event for event.
 */
export async function simWorld(seed: number, options: WorldOptions = {}): Promise<World> {
  const ports = virtualPorts(seed);
  const nats = new SimNats(ports, { latencyMs: 1, ...(options.cluster === true ? { cluster: {} } : {}) });
  options.onNats?.(nats);
  const pools = new SimPools();
  const logger = options.logger ?? pino({ level: 'silent' });
  const observer = options.observer ?? NO_OBSERVER;
  const o = options.observer;
  const dpObserver: DataPathObserver = {
    reclaimed: (...a) => (o?.reclaimed === undefined ? NO_DP_OBSERVER.reclaimed(...a) : o.reclaimed(...a)),
    poolFreed: (...a) => (o?.poolFreed === undefined ? NO_DP_OBSERVER.poolFreed(...a) : o.poolFreed(...a)),
  };
  const nodes = new Map<string, SimNode>();

  const during = async <T>(work: Promise<T>, ms: number): Promise<T> => {
    let settled = false;
    void work.then(
      () => (settled = true),
      () => (settled = true),
    );
    const until = ports.time.nowMs() + ms;
    while (!settled && ports.time.nowMs() < until) await ports.time.run({ untilMs: Math.min(until, ports.time.nowMs() + 10) });
    // Never await an unsettled promise here: nothing would drive virtual time and the run would hang.
    if (!settled) throw new SimDeadlineError(ms);
    return work;
  };

  const boot = async (n: SimNode): Promise<void> => {
    const bus = nats.connect(n.id);
    n.bus = bus;
    const datapath = new SimDataPath(n.id, pools, dpObserver);
    n.datapath = datapath;
    n.launcher.datapath = datapath;
    n.running = await startNode({
      id: n.id,
      ...SIM_NODE,
      programs: SIM_PROGRAMS,
      bus,
      launcher: n.launcher,
      logger,
      appendLog: () => {},
      datapath,
      ports: n.clock.ports(n.random),
      ...(options.timing === undefined ? {} : { timing: options.timing }),
      ...(options.mutations === undefined ? {} : { mutations: options.mutations }),
    });
  };

  for (let i = 1; i <= (options.nodes ?? 3); i++) {
    const id = `node-${i}`;
    const n: SimNode = { id, running: undefined, bus: undefined, launcher: new SimHostLauncher(id, ports.time, observer), datapath: undefined, clock: new SkewedClock(ports.time), random: ports.random.fork(), incarnation: 0 };
    nodes.set(id, n);
    await during(boot(n), 10_000);
  }
  const client = await SigmaClient.connect(nats.connect('client'), { timers: ports.time, clock: ports.time, random: ports.random.fork() });

  const crash = (id: string): void => {
    const n = nodes.get(id);
    if (n?.running === undefined) return;
    const { running, bus } = n;
    n.running = undefined;
    n.bus = undefined;
    // Close the connection first, so nothing the dying process does reaches the server.
    void bus?.close();
    // The process's memory goes with it: its pools vanish, nothing is reclaimed (nothing needs to be).
    n.datapath?.crash();
    n.datapath = undefined;
    for (const h of n.launcher.live()) h.kill();
    void running.system.shutdown().catch(() => {});
  };

  const restart = (id: string): void => {
    const n = nodes.get(id);
    if (n === undefined || n.running !== undefined || n.bus !== undefined) return;
    n.incarnation++;
    boot(n).catch(() => {
      n.datapath?.crash();
      n.datapath = undefined;
      void n.bus?.close();
      n.bus = undefined;
      n.running = undefined;
      ports.time.setTimeout(() => restart(id), RESTART_RETRY_MS);
    });
  };

  return {
    seed,
    ports,
    nats,
    pools,
    nodes,
    client,
    crash,
    restart,
    during,
  };
}
