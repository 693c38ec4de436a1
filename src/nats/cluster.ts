import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { assert } from '../assert.js';
import { InvalidArgumentError, ServerStartError } from './errors.js';
import { connectBus } from './real.js';
import { startNatsServer, type NatsServer, type NatsServerOptions, type NatsUser } from './server.js';

/**
 * Several nats-servers clustered by routes, JetStream on each (Raft among them): the engine a
 * replicated sigma-ts runs on. For `npm run cluster` (all on 127.0.0.1) and the chaos harness (one per
 * network namespace). Binds to the real world: processes and timers.
 */
export interface NatsClusterSpec {
  /** One entry per server: where it listens, and what it runs under (the harness's `ip netns exec`). */
  servers: Array<{ host: string; port: number; clusterPort: number; monitorPort?: number; prefix?: string[] }>;
  /** The cluster's name (routes refuse servers of another). */
  name: string;
  /** Each server's store is `<dataDir>/<server name>`. */
  dataDir: string;
  users?: NatsUser[];
  /** Routes authenticate with this (see NatsClusterOptions.auth). */
  routeAuth?: { user: string; password: string };
  /** The credentials clients use to wait for JetStream (a user allowed `$JS.API.>`); default none. */
  probeUser?: { user: string; password: string };
  onLog?: (server: string, line: string) => void;
}

export interface NatsCluster {
  /** Client URLs, one per server, in spec order. */
  readonly urls: string[];
  /** The running servers (undefined while one is down after kill()). */
  readonly servers: Array<NatsServer | undefined>;
  readonly names: string[];
  /** Replaces the users on every running server (each reloads on SIGHUP). */
  setUsers(users: NatsUser[]): Promise<void>;
  /** kill -9 of one server (its store stays); restart() brings it back with the same name and store. */
  kill(index: number): void;
  restart(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** How long a fresh cluster may take to elect its JetStream meta leader. */
export const JETSTREAM_READY_TIMEOUT_MS = 20_000;
const JETSTREAM_PROBE_MS = 200;
const PROBE_REQUEST_TIMEOUT_MS = 1_000;

export const natsServerName = (clusterName: string, index: number): string => `${clusterName}-n${index + 1}`;

/** Starts every server of the spec, then waits until JetStream answers (its meta leader is elected). */
export async function startNatsCluster(spec: NatsClusterSpec): Promise<NatsCluster> {
  if (spec.servers.length < 1) throw new InvalidArgumentError('a NATS cluster needs at least one server');
  const routes = spec.servers.map((s) => `nats-route://${s.host}:${s.clusterPort}`);
  const names = spec.servers.map((_, i) => natsServerName(spec.name, i));
  let users = spec.users;
  const optionsOf = (i: number): NatsServerOptions => {
    const s = spec.servers[i]!;
    const dataDir = join(spec.dataDir, names[i]!);
    mkdirSync(dataDir, { recursive: true });
    return {
      host: s.host,
      port: s.port,
      dataDir,
      serverName: names[i]!,
      ...(s.monitorPort === undefined ? {} : { monitorPort: s.monitorPort }),
      ...(users === undefined ? {} : { users }),
      ...(s.prefix === undefined ? {} : { prefix: s.prefix }),
      ...(spec.onLog === undefined ? {} : { onLog: (l: string) => spec.onLog!(names[i]!, l) }),
      cluster: { name: spec.name, host: s.host, port: s.clusterPort, routes, ...(spec.routeAuth === undefined ? {} : { auth: spec.routeAuth }) },
    };
  };
  const servers: Array<NatsServer | undefined> = [];
  try {
    for (const [i, s] of (await Promise.allSettled(spec.servers.map((_, i) => startNatsServer(optionsOf(i))))).entries()) {
      if (s.status === 'rejected') throw s.reason;
      servers[i] = s.value;
    }
    await waitJetStream(servers.map((s) => s!.url), spec.probeUser);
  } catch (e) {
    await Promise.all(servers.map((s) => s?.stop()));
    throw e;
  }
  const urls = servers.map((s) => s!.url);
  return {
    urls,
    servers,
    names,
    async setUsers(next) {
      users = next;
      await Promise.all(servers.map((s) => s?.setUsers(next)));
    },
    kill(index) {
      const s = servers[index];
      assert(s !== undefined, `NATS server ${index} is not running`);
      process.kill(s.pid, 'SIGKILL');
      servers[index] = undefined;
      void s.stop(); // ends its watchdog; the store is the caller's (a given dataDir is kept)
    },
    async restart(index) {
      assert(servers[index] === undefined, `NATS server ${index} is running`);
      servers[index] = await startNatsServer(optionsOf(index));
    },
    async stop() {
      await Promise.all(servers.map((s) => s?.stop()));
    },
  };
}

/**
 * Waits until the JetStream API answers without error: a clustered JetStream serves nothing until
 * its servers have elected a meta leader, which comes a moment after each says it is ready.
 */
export async function waitJetStream(urls: string[], user?: { user: string; password: string }, timeoutMs = JETSTREAM_READY_TIMEOUT_MS): Promise<void> {
  const servers = user === undefined ? urls : urls.map((u) => u.replace('nats://', `nats://${encodeURIComponent(user.user)}:${encodeURIComponent(user.password)}@`));
  const bus = await connectBus({ servers, name: 'sigma-jetstream-probe' });
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  try {
    while (Date.now() < deadline) {
      try {
        const m = await bus.request('$JS.API.INFO', new Uint8Array(), { timeoutMs: PROBE_REQUEST_TIMEOUT_MS });
        const info = JSON.parse(new TextDecoder().decode(m.data)) as { error?: { description?: string } };
        if (info.error === undefined) return;
        last = info.error.description ?? 'an error';
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, JETSTREAM_PROBE_MS));
    }
    throw new ServerStartError(`JetStream of the NATS cluster (${urls.join(', ')}) not ready within ${timeoutMs} ms: ${last}`);
  } finally {
    await bus.close();
  }
}

/** Free TCP ports on 127.0.0.1 (for servers whose routes must know each other's ports up front). */
export async function freePorts(count: number): Promise<number[]> {
  const held = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      }),
    ),
  );
  const ports = held.map((s) => (s.address() as { port: number }).port);
  await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
