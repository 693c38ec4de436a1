import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pretty from 'pino-pretty';
import type { ClusterConfig } from '../config/cluster.js';
import { BUILTIN_PROGRAMS } from '../examples/index.js';
import { hostEnv } from '../node/host-process.js';
import { CHANNEL_SECRET_ENV } from '../datapath/remote-auth.js';
import { ADMIN_USER, clusterCredentials, CREDENTIALS_FILE, natsUsers, REALM_KEY_ENV, withUser } from './nats-users.js';
import { startNatsServer } from '../nats/server.js';
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
  natsUrl: string;
  /** The embedded nats-server's process (benchmarks charge its CPU); undefined for external servers. */
  natsPid: number | undefined;
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
  const nats = config.nats.embedded ? await startNatsServer({ port: config.nats.port, dataDir: join(dataDir, 'nats'), keepDataDir: true, users: natsUsers(creds, config.realms) }) : undefined;
  const natsUrl = config.nats.embedded ? withUser(nats!.url, ADMIN_USER, creds.admin) : config.nats.servers[0]!;
  // Hosts get their realm's user on the bare URL (src/node/main.ts).
  const hostNatsUrl = nats === undefined ? natsUrl : nats.url;
  if (nats !== undefined) log(`nats-server ${nats.url} (JetStream store: ${join(dataDir, 'nats')}; users in ${join(dataDir, CREDENTIALS_FILE)})`);
  const snippetFile = join(dataDir, AUTHORIZATION_SNIPPET);
  if (nats === undefined) log(`NATS users for the operator of ${new URL(natsUrl).host}: ${snippetFile} (kept up to date as realms change)`);
  const usersBus = await connectBus({ servers: [natsUrl], name: 'sigma-realm-users' });
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
    const args = ['--id', n.id, '--nats', natsUrl, '--host-nats', hostNatsUrl, '--mcpu', String(n.mcpu), '--mem-mb', String(n.memMb), '--be-slots', String(n.beSlots), '--data-dir', dataDir, '--programs', JSON.stringify(BUILTIN_PROGRAMS), '--datapath', config.datapath, '--pool-mb', String(config.poolMb), '--busy-poll-us', String(config.busyPollUs), '--isolation', config.isolation, '--retention', JSON.stringify(config.retention), '--dp-host', n.dpHost, '--dp-port', String(n.dpPort), '--dp-index', String(n.dpIndex), '--gateway-port', String(n.gatewayPort), '--gateway-host', config.gateway.host, '--gateway-limits', JSON.stringify(config.gateway.limits)];
    const child = fork(NODE_MAIN, args, { env: hostEnv(process.env, { [CHANNEL_SECRET_ENV]: creds.channel, [REALM_KEY_ENV]: creds.realms }), execArgv: [], stdio: ['ignore', 'inherit', options.pretty === true ? 'pipe' : 'inherit', 'ipc'] });
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
    natsPid: nats?.pid,
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
