import { pino, type Logger } from 'pino';
import { SigmaClient } from '../client/client.js';
import { startNode, type NodeTiming, type RunningNode } from '../node/node.js';
import { virtualPorts, type VirtualPorts } from '../ports/virtual.js';
import { SimHostLauncher, SIM_PROGRAMS } from './host.js';
import { SimNats } from './nats.js';

export interface World {
  seed: number;
  ports: VirtualPorts;
  nats: SimNats;
  launcher: SimHostLauncher;
  nodes: Map<string, RunningNode>;
  client: SigmaClient;
  /** Runs virtual time forward while `work` is pending, then returns its result. */
  during<T>(work: Promise<T>, ms: number): Promise<T>;
}

/**
 * A whole cluster in one process: the real node managers, lease candidates and scheduler (the same
 * startNode() the node processes run), on one VirtualTime and one seeded PRNG, talking through the
 * simulated NATS. Nothing here reads the real clock, so a seed replays a run event for event.
 */
export async function simWorld(seed: number, options: { nodes?: number; timing?: NodeTiming; logger?: Logger } = {}): Promise<World> {
  const ports = virtualPorts(seed);
  const nats = new SimNats(ports, { latencyMs: 1 });
  const launcher = new SimHostLauncher(ports.time);
  const logger = options.logger ?? pino({ level: 'silent' });
  const nodes = new Map<string, RunningNode>();
  for (let i = 1; i <= (options.nodes ?? 3); i++) {
    const id = `node-${i}`;
    const node = await startNode({
      id,
      mcpu: 2000,
      memMb: 4096,
      beSlots: 64,
      programs: SIM_PROGRAMS,
      bus: nats.connect(id),
      launcher,
      logger,
      appendLog: () => {},
      ports: { clock: ports.time, timers: ports.time, random: ports.random.fork() },
      ...(options.timing === undefined ? {} : { timing: options.timing }),
    });
    nodes.set(id, node);
  }
  const client = await SigmaClient.connect(nats.connect('client'), { timers: ports.time });
  return {
    seed,
    ports,
    nats,
    launcher,
    nodes,
    client,
    async during(work, ms) {
      let settled = false;
      void work.then(
        () => (settled = true),
        () => (settled = true),
      );
      const until = ports.time.nowMs() + ms;
      while (!settled && ports.time.nowMs() < until) await ports.time.run({ untilMs: Math.min(until, ports.time.nowMs() + 10) });
      return work;
    },
  };
}
