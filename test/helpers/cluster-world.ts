import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../src/nats/real.js';
import type { Bus, Kv } from '../../src/nats/types.js';
import { virtualPorts, type VirtualPorts } from '../../src/ports/index.js';
import { SimNats } from '../../src/sim/nats.js';
import { startNatsCluster, type NatsCluster } from './nats-cluster.js';

/**
 * The two replicated JetStreams the cluster contract runs in: three real nats-servers
 * (./nats-cluster.ts) and the simulated cluster (src/sim/nats-cluster.ts) on virtual time, driven by
 * an autopilot as in ./nats-server.ts. Test code is the same for both.
 */
export interface ClusterWorld {
  kind: 'real' | 'sim';
  /** A client attached to server i (a real one learns the others and fails over to one of them). */
  client(name: string, server: number): Promise<Bus>;
  /** A KV bucket replicated on every server, opened by `bus`. */
  kv(bus: Bus, bucket: string): Promise<Kv>;
  /** The index of the server leading a bucket now (waits while it has none). */
  leaderOf(bucket: string): Promise<number>;
  kill(i: number): void;
  restart(i: number): Promise<void>;
  partition(i: number, cut: boolean): void;
  sleep(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** How long a JetStream call waits in both worlds (short, so a call to a minority fails quickly). */
export const CONTRACT_JS_TIMEOUT_MS = 1_000;
/** Bound on waiting for a leader: Raft's election timeout is at most 9 s; a second round may follow. */
export const LEADER_WAIT_MS = 25_000;
const POLL_MS = 100;

let shared: Promise<NatsCluster> | undefined;

export function sharedCluster(): Promise<NatsCluster> {
  shared ??= startNatsCluster();
  return shared;
}

export async function stopSharedCluster(): Promise<void> {
  if (shared !== undefined) await (await shared).stop();
}

export async function realClusterWorld(): Promise<ClusterWorld> {
  const c = await sharedCluster();
  const open: Bus[] = [];
  const admin: NatsConnection = await connect({ servers: c.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  return {
    kind: 'real',
    async client(name, server) {
      const bus = await connectBus({ servers: [c.url(server)], name, jsTimeoutMs: CONTRACT_JS_TIMEOUT_MS, reconnectWaitMs: 100 });
      open.push(bus);
      return bus;
    },
    async kv(bus, bucket) {
      // The port opens buckets with one replica; the contract's are made replicated first, then bound.
      for (let waited = 0; ; waited += POLL_MS) {
        try {
          await new Kvm(admin).create(bucket, { replicas: c.size, history: 1 });
          break;
        } catch (e) {
          if (waited > LEADER_WAIT_MS) throw e;
          await sleep(POLL_MS);
        }
      }
      return bus.kv(bucket, { bind: true });
    },
    async leaderOf(bucket) {
      for (let waited = 0; waited <= LEADER_WAIT_MS; waited += POLL_MS) {
        const info = await (await jetstreamManager(admin)).streams.info(`KV_${bucket}`).catch(() => undefined);
        const leader = info?.cluster?.leader;
        if (leader !== undefined && leader !== '') return Number(leader.slice(1)) - 1;
        await sleep(POLL_MS);
      }
      throw new Error(`bucket ${bucket} has no leader after ${LEADER_WAIT_MS} ms`);
    },
    kill: (i) => c.kill(i),
    restart: (i) => c.restart(i),
    partition: (i, cut) => c.partition(i, cut),
    sleep,
    async stop() {
      await Promise.all(open.map((b) => b.close()));
      await admin.close();
    },
  };
}

export interface SimClusterWorld extends ClusterWorld {
  sim: SimNats;
  ports: VirtualPorts;
}

export function simClusterWorld(seed = 1): SimClusterWorld {
  const ports = virtualPorts(seed);
  const sim = new SimNats(ports, { latencyMs: 1, jsTimeoutMs: CONTRACT_JS_TIMEOUT_MS, cluster: {} });
  let on = true;
  const autopilot = (async () => {
    while (on) await ports.time.advance(1);
  })();
  const sleep = async (ms: number): Promise<void> => {
    const until = ports.time.nowMs() + ms;
    while (ports.time.nowMs() < until) await new Promise((r) => setImmediate(r));
  };
  const cluster = sim.cluster!;
  return {
    kind: 'sim',
    sim,
    ports,
    client: async (name, server) => sim.connect(name, { server }),
    kv: (bus, bucket) => bus.kv(bucket),
    async leaderOf(bucket) {
      for (let waited = 0; waited <= LEADER_WAIT_MS; waited += POLL_MS) {
        const l = cluster.leaderOf(`KV_${bucket}`);
        if (l !== undefined) return l;
        await sleep(POLL_MS);
      }
      throw new Error(`bucket ${bucket} has no leader after ${LEADER_WAIT_MS} ms`);
    },
    kill: (i) => cluster.kill(i),
    restart: async (i) => cluster.restart(i),
    partition: (i, cut) => cluster.partition(i, cut),
    sleep,
    async stop() {
      on = false;
      await autopilot;
    },
  };
}
