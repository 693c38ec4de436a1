import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer } from '../../src/nats/server.js';

/**
 * Three real nats-server processes clustered on loopback with JetStream, for the contract tests that
 * hold the simulated replicated JetStream (src/sim/nats-cluster.ts) to the real one. Small on purpose:
 * a test harness, not the production cluster starter.
 *
 * Every route between two servers runs through a TCP proxy of this helper (one per direction), so a
 * test can cut one server off from the others while its clients stay connected to it: a minority
 * partition without root, namespaces or firewall rules. Servers advertise a dead cluster address, so
 * they never learn a direct route around the proxies.
 */
export interface NatsCluster {
  /** Client URL of server i (0-based). */
  url(i: number): string;
  /** HTTP monitoring URL of server i (`/jsz`). */
  monitorUrl(i: number): string;
  /** Every client URL, server 0 first. */
  readonly urls: string[];
  readonly size: number;
  /** kill -9 of server i (its store stays on disk). */
  kill(i: number): void;
  /** Starts server i again on the same ports and store; resolves once it says it is ready. */
  restart(i: number): Promise<void>;
  /** Cuts server i's routes to every other server (or heals them); its clients stay connected to it. */
  partition(i: number, cut: boolean): void;
  stop(): Promise<void>;
}

export const CLUSTER_SIZE = 3;
export const CLUSTER_READY_TIMEOUT_MS = 15_000;
/** A port nothing listens on: what the servers advertise as their cluster address (no route around the proxies). */
const DEAD_ADVERTISE = '127.0.0.1:9';
/** Ends the watchdog's server when this process ends in any way (the pipe on stdin closes). */
const WATCHDOG = '"$@" </dev/null & srv=$!; echo "sigma-watchdog server-pid $srv" >&2; while read -r _; do :; done; kill -KILL "$srv" 2>/dev/null; wait "$srv"';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP forwarder that can be cut: cut, it drops its connections and refuses new ones. */
class RouteProxy {
  cut = false;
  readonly #pairs = new Set<[Socket, Socket]>();
  constructor(readonly server: Server, readonly port: number) {}

  static async open(targetPort: number): Promise<RouteProxy> {
    const port = await freePort();
    let proxy!: RouteProxy;
    const server = createServer((inbound) => {
      if (proxy.cut) return void inbound.destroy();
      const outbound = connect(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [inbound, outbound];
      proxy.#pairs.add(pair);
      const end = (): void => {
        proxy.#pairs.delete(pair);
        inbound.destroy();
        outbound.destroy();
      };
      for (const s of pair) s.on('error', end).on('close', end);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    proxy = new RouteProxy(server, port);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return proxy;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    if (cut) for (const [a, b] of this.#pairs) a.destroy(), b.destroy();
  }

  close(): Promise<void> {
    this.setCut(true);
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface Member {
  name: string;
  clientPort: number;
  clusterPort: number;
  monitorPort: number;
  dir: string;
  child: ChildProcess | undefined;
  pid: number | undefined;
}

export async function startNatsCluster(options: { onLog?: (server: string, line: string) => void } = {}): Promise<NatsCluster> {
  const bin = findNatsServer();
  if (bin === undefined) throw new Error('nats-server is missing: apt-get install nats-server');
  const members: Member[] = [];
  for (let i = 0; i < CLUSTER_SIZE; i++) members.push({ name: `s${i + 1}`, clientPort: await freePort(), clusterPort: await freePort(), monitorPort: await freePort(), dir: mkdtempSync(join(tmpdir(), `sigma-cluster-s${i + 1}-`)), child: undefined, pid: undefined });
  // proxies[from][to]: the route from `from` dials this one to reach `to`.
  const proxies: (RouteProxy | undefined)[][] = [];
  for (let a = 0; a < CLUSTER_SIZE; a++) {
    proxies.push([]);
    for (let b = 0; b < CLUSTER_SIZE; b++) proxies[a]!.push(a === b ? undefined : await RouteProxy.open(members[b]!.clusterPort));
  }
  const launch = (i: number): Promise<void> => {
    const m = members[i]!;
    const routes = members.flatMap((_, j) => (j === i ? [] : [`nats://127.0.0.1:${proxies[i]![j]!.port}`])).join(',');
    const args = ['-a', '127.0.0.1', '-p', String(m.clientPort), '-m', String(m.monitorPort), '--server_name', m.name, '-js', '-sd', m.dir, '--cluster_name', 'sigma-contract', '--cluster', `nats://127.0.0.1:${m.clusterPort}`, '--cluster_advertise', DEAD_ADVERTISE, '--routes', routes];
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'sigma-cluster-watchdog', bin, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    m.child = child;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${m.name} not ready within ${CLUSTER_READY_TIMEOUT_MS} ms`)), CLUSTER_READY_TIMEOUT_MS);
      let partial = '';
      child.stderr!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          const pid = /^sigma-watchdog server-pid (\d+)/.exec(line);
          if (pid !== null) m.pid = Number(pid[1]);
          options.onLog?.(m.name, line);
          if (/Server is ready/.test(line)) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
  };
  const killMember = (i: number): void => {
    const m = members[i]!;
    if (m.pid !== undefined) {
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    m.child?.stdin?.end();
    m.pid = undefined;
  };
  const cut = (i: number, on: boolean): void => {
    for (let j = 0; j < CLUSTER_SIZE; j++) {
      proxies[i]![j]?.setCut(on);
      proxies[j]![i]?.setCut(on);
    }
  };
  try {
    await Promise.all(members.map((_, i) => launch(i)));
  } catch (e) {
    for (let i = 0; i < CLUSTER_SIZE; i++) killMember(i);
    throw e;
  }
  return {
    url: (i) => `nats://127.0.0.1:${members[i]!.clientPort}`,
    monitorUrl: (i) => `http://127.0.0.1:${members[i]!.monitorPort}`,
    urls: members.map((m) => `nats://127.0.0.1:${m.clientPort}`),
    size: CLUSTER_SIZE,
    kill: killMember,
    restart: (i) => launch(i),
    partition: cut,
    async stop() {
      for (let i = 0; i < CLUSTER_SIZE; i++) killMember(i);
      await Promise.all(members.map((m) => (m.child === undefined || m.child.exitCode !== null ? undefined : new Promise((r) => m.child!.once('exit', r)))));
      for (const row of proxies) for (const p of row) await p?.close();
      for (const m of members) rmSync(m.dir, { recursive: true, force: true });
    },
  };
}
