/**
 * A sigma-ts cluster across a lab's machines: three nats-servers clustered over the bridge (JetStream
 * R3), a node process in each machine's namespace (its data-path channel on the machine's address),
 * and, in the process that runs this (the lab's client machine), a client. Harness code: real
 * processes, real time. Faults on it: kill -9, pause, restart of a node or a NATS server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../assert.js';
import { SigmaClient, untilScheduler } from '../client/client.js';
import { ADMIN_USER, clusterCredentials, natsUsers, ROUTE_USER, routePassword, withUser } from '../cluster/nats-users.js';
import { followRealmUsers } from '../cluster/realm-users.js';
import { NODE_MAIN, nodeArgs, nodeEnv } from '../cluster/launcher.js';
import { defineCluster, type ClusterConfig } from '../config/cluster.js';
import { BUCKET, decodeJson, type LeaseRecord } from '../control/protocol/index.js';
import { startNatsCluster, type NatsCluster } from '../nats/cluster.js';
import { connectBus } from '../nats/real.js';
import type { Bus } from '../nats/types.js';
import { DEFAULT_TIMING } from '../node/node.js';
import type { Lab, LabMachine } from './lab.js';

export const NATS_SERVERS = 3;
/**
 * How the lab's machines share the work. `dedicated` (the default): three control-plane machines, each a
 * NATS server and a node that runs no procs (it may hold the scheduler lease and serves its gateway),
 * and three workers, each a node with procs and no NATS server, as a production cluster keeps its
 * control plane off the machines its workloads run on (docs/machines.md). `colocated`: three machines,
 * each a NATS server, a node and procs.
 */
export type Topology = 'dedicated' | 'colocated';
/** The lab of each topology: the client machine (the driver runs there) first, the NATS servers' machines next. */
export const LAB_MACHINES: Record<Topology, readonly string[]> = {
  dedicated: ['client', 'c1', 'c2', 'c3', 'w1', 'w2', 'w3'],
  colocated: ['client', 'm1', 'm2', 'm3'],
};
export const NATS_CLIENT_PORT = 4222;
export const NATS_CLUSTER_PORT = 6222;
export const NATS_MONITOR_PORT = 8222;
export const DP_PORT = 7100;
/** Nodes ping NATS this often: a server cut off is left after about two pings, well inside the lease. */
export const NODE_NATS_PING_MS = 1_000;
export const NODE_READY_TIMEOUT_MS = 60_000;
export const REALM = 'default';
/**
 * A second realm, made at start through the scheduler (its NATS user follows, as for `sigma realm
 * create`), used by part of the storm (and the datapath scenario's chain), and removed at the end of
 * every scenario: then nothing of it may be left (./leftovers.ts).
 */
export const SPARE_REALM = 'spare';
/** Bound on the spare realm's first proc running (its NATS user is added by a reload of every server). */
export const SPARE_READY_MS = 30_000;
export const NODE_START_ATTEMPTS_MAX = 3;

export interface ChaosWorld {
  readonly lab: Lab;
  /** The machines that run a node (and, the first three, a NATS server). */
  readonly machines: readonly LabMachine[];
  readonly config: ClusterConfig;
  readonly nats: NatsCluster;
  readonly bus: Bus;
  readonly client: SigmaClient;
  /** Each machine's data directory (its node's proc logs are under `logs/`). */
  dirOf(m: LabMachine): string;
  nodeId(m: LabMachine): string;
  machineOf(nodeId: string): LabMachine;
  /** The node process of a machine, while it runs. */
  nodePid(m: LabMachine): number | undefined;
  startNode(m: LabMachine): Promise<void>;
  /** kill -9 of the node process (its hosts follow it). */
  killNode(m: LabMachine): void;
  signalNode(m: LabMachine, signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** The NATS server on a machine, if it has one (index into nats). */
  natsIndex(m: LabMachine): number | undefined;
  /** The node holding the scheduler lease, if any. */
  leader(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startWorld(lab: Lab, topology: Topology, dataDir: string, log: (line: string) => void): Promise<ChaosWorld> {
  const machines = lab.machines.filter((m) => m.name !== 'client');
  assert(machines.length >= NATS_SERVERS, `a chaos world needs at least ${NATS_SERVERS} machines`);
  assert(topology === 'colocated' || machines.length > NATS_SERVERS, 'a dedicated control plane leaves machines for the procs');
  mkdirSync(dataDir, { recursive: true });
  const creds = clusterCredentials(dataDir);
  const nats = await startNatsCluster({
    name: lab.tag,
    dataDir: join(dataDir, 'nats'),
    servers: machines.slice(0, NATS_SERVERS).map((m) => ({ host: m.addr, port: NATS_CLIENT_PORT, clusterPort: NATS_CLUSTER_PORT, monitorPort: NATS_MONITOR_PORT, prefix: ['ip', 'netns', 'exec', m.ns] })),
    users: natsUsers(creds, [REALM]),
    routeAuth: { user: ROUTE_USER, password: routePassword(creds) },
    probeUser: { user: ADMIN_USER, password: creds.admin },
  });
  const natsUrl = withUser(nats.urls.join(','), ADMIN_USER, creds.admin);
  const nodeId = (m: LabMachine): string => `${lab.tag}-${m.name}`;
  const config = defineCluster({
    name: lab.tag,
    nodes: machines.map((m, i) => ({ id: nodeId(m), dpHost: m.addr, dpPort: DP_PORT, dpIndex: i + 1, gatewayPort: 0, procs: topology === 'colocated' || i >= NATS_SERVERS })),
    nats: { servers: nats.urls, replicas: NATS_SERVERS },
    realms: [REALM],
    dataDir,
    // The scheduler scenario's 100,000 exited procs of history stay in the table (the default keeps 100,000 per realm).
    retention: { maxPerRealm: 1_000_000 },
  });
  const bus = await connectBus({ servers: [natsUrl], name: 'chaos', replicas: NATS_SERVERS });
  const users = await followRealmUsers(bus, creds, [REALM], { server: nats }, log);
  const children = new Map<string, ChildProcess>();
  const dirOf = (m: LabMachine): string => join(dataDir, m.name);

  // A node that cannot open its buckets while their streams elect leaders exits (as under systemd, it
  // is started again): a few attempts before the run gives up.
  const startNode = async (m: LabMachine): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startNodeOnce(m);
      } catch (e) {
        if (attempt >= NODE_START_ATTEMPTS_MAX) throw e;
        log(`node of ${m.name} did not start (${(e as Error).message}); again`);
      }
    }
  };

  const startNodeOnce = async (m: LabMachine): Promise<void> => {
    const child = launchNode({ config, nats, creds, dataDir, dir: dirOf(m), id: nodeId(m), index: machines.indexOf(m) }, m);
    children.set(m.name, child);
    await untilReady(child, nodeId(m), join(dataDir, `${m.name}.node.log`));
  };

  await Promise.all(machines.map(startNode));
  const client = await SigmaClient.connect(bus);
  await untilScheduler(() => ensureRealm(client, bus, REALM), { attempts: 200, delayMs: 250 });
  await untilScheduler(() => ensureRealm(client, bus, SPARE_REALM), { attempts: 200, delayMs: 250 });
  await untilRealmRuns(client, SPARE_REALM);
  const leaderKv = await bus.kv(BUCKET.leader);
  return {
    lab,
    machines,
    config,
    nats,
    bus,
    client,
    dirOf,
    nodeId,
    machineOf: (id) => machines.find((m) => nodeId(m) === id)!,
    nodePid: (m) => {
      const c = children.get(m.name);
      return c === undefined || c.exitCode !== null || c.signalCode !== null ? undefined : c.pid;
    },
    startNode,
    killNode: (m) => children.get(m.name)?.kill('SIGKILL'),
    signalNode: (m, signal) => children.get(m.name)?.kill(signal),
    natsIndex: (m) => {
      const i = machines.indexOf(m);
      return i >= 0 && i < NATS_SERVERS ? i : undefined;
    },
    async leader() {
      const e = await leaderKv.get('scheduler').catch(() => null);
      return e === null ? undefined : (decodeJson(e.value) as LeaseRecord).holder;
    },
    async stop() {
      users.stop();
      for (const c of children.values()) c.kill('SIGCONT');
      for (const c of children.values()) c.kill('SIGKILL');
      await bus.close().catch(() => {});
      await nats.stop();
    },
  };
}

interface NodeLaunch {
  config: ClusterConfig;
  nats: NatsCluster;
  creds: ReturnType<typeof clusterCredentials>;
  dataDir: string;
  /** The machine's own data directory, and its node's id and index among the machines. */
  dir: string;
  id: string;
  index: number;
}

/** A machine's node process, in its namespace; its output goes to `<dataDir>/<machine>.node.log`. */
function launchNode(l: NodeLaunch, m: LabMachine): ChildProcess {
  mkdirSync(l.dir, { recursive: true });
  const n = l.config.nodes.find((c) => c.id === l.id)!;
  // A node talks to its own machine's NATS server first, as on real machines (and so the scheduler
  // knows which server dies with it: src/control/leader-placement.ts).
  const urls = l.nats.urls;
  const own = l.index < NATS_SERVERS ? [urls[l.index]!, ...urls.filter((_, j) => j !== l.index)] : urls;
  const url = withUser(own.join(','), ADMIN_USER, l.creds.admin);
  // A worker has no server of its own: its servers are shuffled, and it knows of no server that dies with it.
  const local = l.index < NATS_SERVERS ? ['--nats-ordered', '--nats-monitor', `http://${m.addr}:${NATS_MONITOR_PORT}`] : [];
  const args = [...nodeArgs(l.config, n, { natsUrl: url, hostNatsUrl: own.join(','), dataDir: l.dir }), '--nats-ping-ms', String(NODE_NATS_PING_MS), ...local];
  const out = openSync(join(l.dataDir, `${m.name}.node.log`), 'a');
  return spawn('ip', ['netns', 'exec', m.ns, process.execPath, NODE_MAIN, ...args], { env: { ...nodeEnv(l.creds), SIGMA_LOG: process.env['SIGMA_LOG'] ?? 'warn' }, stdio: ['ignore', out, out, 'ipc'] });
}

/** Resolves once the node says it is ready; rejects if it exits first or takes too long. */
function untilReady(child: ChildProcess, id: string, logFile: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${id} not ready within ${NODE_READY_TIMEOUT_MS} ms (see ${logFile})`)), NODE_READY_TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`node ${id} exited during start (${code}; see ${logFile})`)));
    child.on('message', (msg: { t?: string }) => {
      if (msg.t !== 'node-ready') return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
}

/**
 * Creates a realm of the fresh world. `realm-exists` is this run's own earlier attempt (its answer lost:
 * the scheduler stepped the realms stream down at start, and a full run's service scenario stopped on it)
 * once the realms bucket shows the record; otherwise (a failed write is also answered so) it is asked again.
 */
async function ensureRealm(client: SigmaClient, bus: Bus, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.createRealm(name);
    } catch (e) {
      if ((e as { type?: string }).type !== 'realm-exists') throw e;
      const rec = await (await bus.kv(BUCKET.realms)).get(name).catch(() => null);
      if (rec !== null) return;
      if (attempt >= REALM_CREATE_ATTEMPTS_MAX) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const REALM_CREATE_ATTEMPTS_MAX = 40;

/** Spawns `hello` in a new realm until one ends ok: its NATS user has reached every server. */
async function untilRealmRuns(client: SigmaClient, realm: string): Promise<void> {
  const deadline = Date.now() + SPARE_READY_MS;
  for (;;) {
    const pid = await client.spawn({ program: 'hello', args: ['ready'], realm });
    const st = await client.waitExit(pid, { timeoutMs: SPARE_READY_MS });
    if (st.kind === 'ok') return;
    if (Date.now() > deadline) throw new Error(`realm ${realm}: no proc ran ok within ${SPARE_READY_MS} ms (last: ${JSON.stringify(st)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The lease TTL the nodes run with (what a service's recovery is held to). */
export const LEASE_TTL_S = DEFAULT_TIMING.leaseTtlMs / 1000;
