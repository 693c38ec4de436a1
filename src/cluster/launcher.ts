import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pretty from 'pino-pretty';
import type { ClusterConfig, NodeConfig } from '../config/cluster.js';
import { BUILTIN_PROGRAMS } from '../examples/index.js';
import { hostEnv } from '../node/host-process.js';
import { CHANNEL_SECRET_ENV } from '../datapath/remote-auth.js';
import { ADMIN_USER, clusterCredentials, CREDENTIALS_FILE, natsUsers, REALM_KEY_ENV, ROUTE_USER, routePassword, withUser, type NatsCredentials } from './nats-users.js';
import { startNatsServer, type NatsUser } from '../nats/server.js';
import { freePorts, startNatsCluster, type NatsCluster } from '../nats/cluster.js';
import { connectBus } from '../nats/real.js';
import { followRealmUsers } from './realm-users.js';
import { BUCKET } from '../control/protocol/index.js';
import type { Bus } from '../nats/types.js';
import { bundleProgram, stopBundler } from '../programs/bundle.js';
import { ProgramStore } from '../programs/store.js';
import { RouteStore } from '../gateway/route-store.js';

const NODE_MAIN = fileURLToPath(new URL('../node/main.js', import.meta.url));
export const NODE_READY_TIMEOUT_MS = 20_000;
/** For an external NATS cluster: the users its operator includes in the server's config. */
export const AUTHORIZATION_SNIPPET = 'nats-authorization.conf';

export interface RunningCluster {
  /** Every NATS server's URL, comma-separated, with the control plane's user (connectBus splits it). */
  natsUrl: string;
  /** The (first) embedded nats-server's process (benchmarks charge its CPU); undefined for external servers. */
  natsPid: number | undefined;
  /** The embedded servers when there are several (kill and restart one: tests, chaos); else undefined. */
  natsCluster: NatsCluster | undefined;
  dataDir: string;
  nodes: Map<string, ChildProcess>;
  /** Where each node's gateway listens, once it does (a node restarted may listen elsewhere when configured 0). */
  gatewayPorts: Map<string, number>;
  programs: Record<string, string>;
  /** Starts (or restarts) one node process. */
  startNode(id: string): Promise<ChildProcess>;
  stop(): Promise<void>;
}

/**
 * Starts what cluster.config.ts describes on this machine: the embedded nats-server (JetStream store
 * under dataDir, so a restart recovers state) unless NATS servers are given, then one process per node.
 * Realms are created by the caller through the client once a scheduler is elected.
 */
export interface StartOptions {
  configDir?: string;
  log?: (line: string) => void;
  /** Node processes' JSON logs rendered for people (a terminal); default: passed through as JSON lines. */
  pretty?: boolean;
}

export async function startCluster(config: ClusterConfig, options: StartOptions = {}): Promise<RunningCluster> {
  const log = options.log ?? (() => {});
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // An embedded server requires users: the control plane's, and one per realm for its proc hosts.
  const creds = clusterCredentials(dataDir);
  const nats = config.nats.embedded ? await startEmbeddedNats(config, dataDir, creds) : undefined;
  const external = config.nats.embedded ? [] : config.nats.servers;
  const natsUrl = nats !== undefined ? withUser(nats.urls.join(','), ADMIN_USER, creds.admin) : external.join(',');
  // Hosts get their realm's user on the bare URLs (src/node/main.ts).
  const hostNatsUrl = nats === undefined ? natsUrl : nats.urls.join(',');
  if (nats !== undefined) log(`nats-server ${nats.urls.join(', ')} (JetStream store under ${dataDir}, replicas ${config.nats.replicas}; users in ${join(dataDir, CREDENTIALS_FILE)})`);
  const snippetFile = join(dataDir, AUTHORIZATION_SNIPPET);
  if (nats === undefined) log(`NATS users for the operator of ${natsUrl}: ${snippetFile} (kept up to date as realms change)`);
  const usersBus = await connectBus({ servers: [natsUrl], name: 'sigma-realm-users', replicas: config.nats.replicas });
  const realmUsers = await followRealmUsers(usersBus, creds, config.realms, nats === undefined ? { snippetFile } : { server: nats }, log);
  const configDir = options.configDir ?? process.cwd();
  // The programs of the config are deployed as `sigma deploy` does (bundled, checked, stored by hash),
  // for every realm; nodes fetch them on first use. Only the built-in ones are on the nodes' disks.
  const programs: Record<string, string> = { ...BUILTIN_PROGRAMS };
  const configured = Object.entries(config.programs).map(([name, path]) => [name, isAbsolute(path) ? path : resolve(configDir, path)] as const);
  await deployConfigPrograms(usersBus, configured, log);
  for (const [name, path] of configured) programs[name] = path;
  const nodes = new Map<string, ChildProcess>();
  const gatewayPorts = new Map<string, number>();
  if (config.routes.length > 0) await (await RouteStore.open(usersBus)).seed(config.routes);
  const byId = new Map(config.nodes.map((n) => [n.id, n]));

  const startNode = (id: string): Promise<ChildProcess> => {
    const n = byId.get(id);
    if (n === undefined) return Promise.reject(new Error(`no node ${id} in the config`));
    const args = nodeArgs(config, n, { natsUrl, hostNatsUrl, dataDir });
    const child = fork(NODE_MAIN, args, { env: nodeEnv(creds), execArgv: [], stdio: ['ignore', 'inherit', options.pretty === true ? 'pipe' : 'inherit', 'ipc'] });
    // Node processes log JSON lines on stderr (their hosts' logs come through them).
    child.stderr?.pipe(pretty({ colorize: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', destination: 2 }));
    nodes.set(id, child);
    child.on('message', (m: { t?: string; port?: number }) => {
      if (m.t === 'gateway-listening' && typeof m.port === 'number') gatewayPorts.set(id, m.port);
    });
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`node ${id} not ready within ${NODE_READY_TIMEOUT_MS} ms`)), NODE_READY_TIMEOUT_MS);
      child.once('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`node ${id} exited during start (code ${code})`));
      });
      child.on('message', (m: { t?: string }) => {
        if (m.t !== 'node-ready') return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        log(`node ${id} pid ${child.pid}`);
        res(child);
      });
    });
  };

  await Promise.all(config.nodes.map((n) => startNode(n.id)));
  return {
    natsUrl,
    natsPid: nats?.pids[0],
    natsCluster: nats?.cluster,
    dataDir,
    nodes,
    gatewayPorts,
    programs,
    startNode,
    async stop() {
      await Promise.all(
        [...nodes.values()].map(
          (c) =>
            new Promise<void>((r) => {
              if (c.exitCode !== null || c.signalCode !== null) return r();
              const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
              c.once('exit', () => {
                clearTimeout(t);
                r();
              });
              c.kill('SIGTERM');
            }),
        ),
      );
      realmUsers.stop();
      await usersBus.close();
      await nats?.stop();
    },
  };
}

/** A node process's command line (src/node/main.ts) for one node of the config. */
export function nodeArgs(config: ClusterConfig, n: NodeConfig, at: { natsUrl: string; hostNatsUrl: string; dataDir: string }): string[] {
  return ['--id', n.id, '--nats', at.natsUrl, '--nats-replicas', String(config.nats.replicas), '--host-nats', at.hostNatsUrl, '--mcpu', String(n.mcpu), '--mem-mb', String(n.memMb), '--be-slots', String(n.beSlots), '--data-dir', at.dataDir, '--programs', JSON.stringify(BUILTIN_PROGRAMS), '--datapath', config.datapath, '--pool-mb', String(config.poolMb), '--busy-poll-us', String(config.busyPollUs), '--isolation', config.isolation, '--retention', JSON.stringify(config.retention), '--dp-host', n.dpHost, '--dp-port', String(n.dpPort), '--dp-index', String(n.dpIndex), '--gateway-port', String(n.gatewayPort), '--gateway-host', config.gateway.host, '--gateway-limits', JSON.stringify(config.gateway.limits), ...(n.procs ? [] : ['--no-procs'])];
}

/** A node process's environment: the channel secret and the realm key, nothing a host may inherit. */
export const nodeEnv = (creds: NatsCredentials): NodeJS.ProcessEnv => hostEnv(process.env, { [CHANNEL_SECRET_ENV]: creds.channel, [REALM_KEY_ENV]: creds.realms });

export { NODE_MAIN };

/** The embedded NATS: what the launcher needs of one server or of a cluster of them. */
interface EmbeddedNats {
  urls: string[];
  pids: number[];
  cluster: NatsCluster | undefined;
  setUsers(users: NatsUser[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One server (its store in `<dataDir>/nats`, as before clusters), or `embeddedServers` clustered on
 * 127.0.0.1 (stores in `<dataDir>/nats-cluster/<name>`), their routes authenticated.
 */
async function startEmbeddedNats(config: ClusterConfig, dataDir: string, creds: NatsCredentials): Promise<EmbeddedNats> {
  const n = config.nats;
  if (!n.embedded) throw new Error('startEmbeddedNats: the config names external servers');
  const users = natsUsers(creds, config.realms);
  if (n.embeddedServers === 1) {
    const s = await startNatsServer({ port: n.port, dataDir: join(dataDir, 'nats'), keepDataDir: true, users });
    return { urls: [s.url], pids: [s.pid], cluster: undefined, setUsers: (u) => s.setUsers(u), stop: () => s.stop() };
  }
  const count = n.embeddedServers;
  const free = n.port === 0 || n.clusterPort === 0 ? await freePorts(2 * count) : [];
  const servers = Array.from({ length: count }, (_, i) => ({ host: '127.0.0.1', port: n.port === 0 ? free[i]! : n.port + i, clusterPort: n.clusterPort === 0 ? free[count + i]! : n.clusterPort + i }));
  const cluster = await startNatsCluster({ servers, name: config.name, dataDir: join(dataDir, 'nats-cluster'), users, routeAuth: { user: ROUTE_USER, password: routePassword(creds) }, probeUser: { user: ADMIN_USER, password: creds.admin } });
  return {
    urls: cluster.urls,
    get pids() {
      return cluster.servers.flatMap((s) => (s === undefined ? [] : [s.pid]));
    },
    cluster,
    setUsers: (u) => cluster.setUsers(u),
    stop: () => cluster.stop(),
  };
}

/** Tries of a JetStream call while the server reloads its users (its API has no responders for a few ms). */
const JS_RELOAD_ATTEMPTS_MAX = 40;
const JS_RELOAD_RETRY_MS = 50;

async function untilJetStream<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if ((e as { type?: string }).type !== 'no-responders' || attempt >= JS_RELOAD_ATTEMPTS_MAX) throw e;
      await new Promise((r) => setTimeout(r, JS_RELOAD_RETRY_MS));
    }
  }
}

/** Bundles and stores each program of the config for all realms; a refused one stops the start, saying why. */
async function deployConfigPrograms(bus: Bus, programs: ReadonlyArray<readonly [string, string]>, log: (line: string) => void): Promise<void> {
  if (programs.length === 0) return;
  const started = performance.now();
  const store = await untilJetStream(async () => ProgramStore.open(bus, await bus.kv(BUCKET.realms)));
  await Promise.all(
    programs.map(async ([name, path]) => {
      const bundle = await bundleProgram(path);
      await untilJetStream(() => store.deployForCluster(name, bundle));
    }),
  ).finally(stopBundler);
  log(`deployed ${programs.length} programs of the config in ${Math.round(performance.now() - started)} ms`);
}

export function configDirOf(path: string): string {
  return dirname(resolve(path));
}
