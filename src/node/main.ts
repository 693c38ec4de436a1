/**
 * A node process: one ActorSystem with a NodeManager, and a lease candidate that runs the scheduler
 * and realm manager while it holds leadership. Started by `sigma cluster` (or by hand on another
 * machine, pointed at the same NATS cluster). Binding to the real world is this file's job.
 */
import { Command } from 'commander';
import { appendFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectBus, REPLICAS_MAX, splitServers } from '../nats/real.js';
import { defineCluster, ISOLATION_MODES, POOL_MB_MAX, PORT_MAX, type DataPathMode, type IsolationMode } from '../config/cluster.js';
import type { Retention } from '../control/retention.js';
import { BUSY_POLL_US_MAX, DEFAULT_BUSY_POLL_US } from '../datapath/busy-poll.js';
import { DEFAULT_POOL_BYTES, NodeDataPath } from './datapath/node-datapath.js';
import { defaultNodeIndex, NODE_INDEX_MAX } from './datapath/ids.js';
import { ForkHostLauncher, HostStartError, type HostLauncher } from './host-process.js';
import { CHANNEL_SECRET_ENV } from '../datapath/remote-auth.js';
import { HostCgroups } from './sandbox/cgroups.js';
import { HostSandbox } from './sandbox/host-sandbox.js';
import { isolationStatus } from './sandbox/probe.js';
import { startNode } from './node.js';
import type { GatewayLimits } from '../gateway/gateway.js';
import { realmPassword, realmUser, REALM_KEY_ENV, withUser } from '../cluster/nats-users.js';
import { BUCKET } from '../control/protocol/index.js';
import { hostNameLookup, type HostNameLookup } from './name-lookup.js';
import { followRealmLimits, type RealmLimits } from './realm-limits.js';
import { ProgramCache } from './program-cache.js';
import { ProgramStore } from '../programs/store.js';
import { armFromEnv, FailSpecError } from '../chaos/sigmafail.js';
import { realTimers } from '../ports/real.js';

const opts = new Command()
  .requiredOption('--id <id>')
  .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated (any one will do; the client fails over among them)')
  .option('--nats-monitor <url>', "HTTP monitoring of this machine's own NATS server (http://host:8222): a node whose server leads JetStream's meta group leaves the scheduler to others")
  .option('--nats-ordered', "try the --nats servers in the order given, the first being this machine's own (default: shuffled)")
  .option('--nats-ping-ms <n>', 'client pings to NATS: a dead or unreachable server is noticed after about twice this', '10000')
  .option('--nats-replicas <n>', `replicas of every bucket and stream this node creates (1..${REPLICAS_MAX}; 3 on a NATS cluster)`, '1')
  .option('--host-nats <url>', `the URL proc hosts connect to; with ${REALM_KEY_ENV} set, each realm's hosts get their realm's user on it; default: --nats`)
  .option('--mcpu <n>', 'capacity in millicores', '2000')
  .option('--no-procs', 'run no procs: a control-plane node (lease, gateway), which the scheduler places nothing on')
  .option('--mem-mb <n>', 'memory capacity', '4096')
  .option('--be-slots <n>', 'best-effort procs run at once', '64')
  .option('--data-dir <dir>', 'logs and state', '.sigma')
  .option('--programs <json>', 'program name -> module path', '{}')
  .option('--datapath <mode>', 'data path: auto (bpf when it loads), bpf or userspace', 'auto')
  .option('--pool-mb <n>', 'shared-memory pool per realm, MiB', String(DEFAULT_POOL_BYTES >> 20))
  .option('--busy-poll-us <n>', 'keep polling the data path this long after traffic, µs (0: never)', String(DEFAULT_BUSY_POLL_US))
  .option('--dp-host <addr>', 'address the node-to-node data-path channel listens on', '127.0.0.1')
  .option('--dp-port <n>', 'its port (0: any free one; the heartbeat tells peers)', '0')
  .option('--isolation <mode>', 'proc host sandbox: auto (where the node can), required (refuse hosts without it) or off', 'auto')
  .option('--retention <json>', 'exited procs in the table: {"maxAgeMs","maxPerRealm","sweepEveryMs"} (default: the config defaults)')
  .option('--gateway-port <n>', 'HTTP ingress port of this node (0: any free one); no gateway when unset')
  .option('--gateway-host <addr>', 'address the gateway listens on', '0.0.0.0')
  .option('--gateway-limits <json>', "the gateway's bounds (cluster.config.ts gateway.limits), validated by the launcher", '{}')
  .option('--dp-index <n>', `this node's endpoint range, 1..${NODE_INDEX_MAX}, distinct per node (default: a hash of the id)`)
  .parse()
  .opts<{ id: string; nats: string; natsReplicas: string; natsPingMs: string; natsOrdered?: boolean; natsMonitor?: string; procs: boolean; mcpu: string; memMb: string; beSlots: string; dataDir: string; programs: string; datapath: string; poolMb: string; busyPollUs: string; dpHost: string; dpPort: string; dpIndex?: string; isolation: string; hostNats?: string; retention?: string; gatewayPort?: string; gatewayHost: string; gatewayLimits: string }>();

const log = pino({ level: process.env['SIGMA_LOG'] ?? 'info', name: opts.id }, pino.destination(2));
const programs = JSON.parse(opts.programs) as Record<string, string>;
const logDir = join(opts.dataDir, 'logs');
mkdirSync(logDir, { recursive: true });
chmodSync(logDir, 0o700); // procs' output: the node's to read, no realm's

if (!['auto', 'bpf', 'userspace'].includes(opts.datapath)) {
  log.fatal(`--datapath must be auto, bpf or userspace, got "${opts.datapath}"`);
  process.exit(2);
}
const poolMb = Number(opts.poolMb);
if (!Number.isInteger(poolMb) || poolMb < 1 || poolMb > POOL_MB_MAX) {
  log.fatal(`--pool-mb must be an integer in [1, ${POOL_MB_MAX}], got "${opts.poolMb}"`);
  process.exit(2);
}
const busyPollUs = Number(opts.busyPollUs);
if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > BUSY_POLL_US_MAX) {
  log.fatal(`--busy-poll-us must be an integer in [0, ${BUSY_POLL_US_MAX}], got "${opts.busyPollUs}"`);
  process.exit(2);
}
const dpPort = Number(opts.dpPort);
const dpIndex = opts.dpIndex === undefined ? defaultNodeIndex(opts.id) : Number(opts.dpIndex);
if (!Number.isInteger(dpPort) || dpPort < 0 || dpPort > PORT_MAX || !Number.isInteger(dpIndex) || dpIndex < 1 || dpIndex > NODE_INDEX_MAX) {
  log.fatal(`--dp-port must be in [0, ${PORT_MAX}] and --dp-index in [1, ${NODE_INDEX_MAX}], got "${opts.dpPort}" and "${opts.dpIndex}"`);
  process.exit(2);
}
// The listen address is also what the heartbeat tells peers: a wildcard would send them nowhere.
if (['0.0.0.0', '::', ''].includes(opts.dpHost)) {
  log.fatal(`--dp-host must be an address other nodes can reach (it goes into the heartbeat), got "${opts.dpHost}"`);
  process.exit(2);
}
if (!(ISOLATION_MODES as readonly string[]).includes(opts.isolation)) {
  log.fatal(`--isolation must be ${ISOLATION_MODES.join(', ')}, got "${opts.isolation}"`);
  process.exit(2);
}
let retention: Retention;
try {
  retention = defineCluster({ retention: opts.retention === undefined ? {} : (JSON.parse(opts.retention) as Partial<Retention>) }).retention;
} catch (e) {
  log.fatal(`--retention: ${(e as Error).message}`);
  process.exit(2);
}
const gatewayPort = opts.gatewayPort === undefined ? undefined : Number(opts.gatewayPort);
if (gatewayPort !== undefined && (!Number.isInteger(gatewayPort) || gatewayPort < 0 || gatewayPort > PORT_MAX)) {
  log.fatal(`--gateway-port must be in [0, ${PORT_MAX}], got "${opts.gatewayPort}"`);
  process.exit(2);
}
const natsReplicas = Number(opts.natsReplicas);
if (!Number.isInteger(natsReplicas) || natsReplicas < 1 || natsReplicas > REPLICAS_MAX) {
  log.fatal(`--nats-replicas must be an integer in [1, ${REPLICAS_MAX}], got "${opts.natsReplicas}"`);
  process.exit(2);
}
if (!(Number(opts.natsPingMs) >= 100)) {
  log.fatal(`--nats-ping-ms must be at least 100, got "${opts.natsPingMs}"`);
  process.exit(2);
}
// Faults this process injects into itself (SIGMA_FAIL; src/chaos/sigmafail.ts), armed before anything starts.
try {
  armFromEnv(opts.id, realTimers, (line) => log.warn(line));
} catch (e) {
  if (!(e instanceof FailSpecError)) throw e;
  log.fatal(e.message);
  process.exit(2);
}
const capacity = { mcpu: Number(opts.mcpu), memMb: Number(opts.memMb), beSlots: Number(opts.beSlots) };
for (const [k, v] of Object.entries(capacity)) {
  if (!Number.isSafeInteger(v) || v < 0) {
    log.fatal(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a whole number, got "${opts[k as keyof typeof capacity]}"`);
    process.exit(2);
  }
}
// Each realm's hosts get a NATS user of their realm, with a password derived from this key (given in the
// environment by `npm run cluster`; src/cluster/nats-users.ts). Without it they share --host-nats's user.
const realmKey = process.env[REALM_KEY_ENV];
delete process.env[REALM_KEY_ENV];
const hostNats = opts.hostNats ?? opts.nats;
const hostNatsUrl = (realm: string): string => (realmKey === undefined ? hostNats : withUser(hostNats, realmUser(realm), realmPassword(realmKey, realm)));
let lookupName: HostNameLookup | undefined; // once NATS is up, before any host starts
let realmLimits: RealmLimits | undefined; // likewise
let programStore: ProgramStore | undefined; // likewise
let realmGroup: ((realm: string) => number) | undefined; // sandboxed: each realm's uid (= gid)
// Deployed programs: fetched by this process, read by hosts from their realm's directory.
const programCache = new ProgramCache({ dataDir: opts.dataDir, fetch: (hash, chunk) => programStore!.fetch(hash, chunk), groupOf: (realm) => realmGroup?.(realm) });
const isolation = hostIsolation(opts.isolation as IsolationMode);
if (realmKey === undefined) isolation.status.missing.push(`NATS: proc hosts of every realm share one user (${REALM_KEY_ENV} is not set)`);
// The node-to-node channel's secret comes in the environment (`npm run cluster` sets it; by hand: set it
// to the same value on every machine). Without one, peers are not authenticated, and the node says so.
const channelSecret = process.env[CHANNEL_SECRET_ENV];
delete process.env[CHANNEL_SECRET_ENV]; // nothing this process starts inherits it
if (channelSecret === undefined) isolation.status.missing.push(`node-to-node channel: not authenticated (${CHANNEL_SECRET_ENV} is not set)`);
const cross = { index: dpIndex, host: opts.dpHost, port: dpPort, ...(channelSecret === undefined ? {} : { channel: { secret: channelSecret } }) };
const poolBytesFor = (realm: string): number | undefined => realmLimits?.poolBytesFor(realm);
const poolSizeKnown = async (realm: string): Promise<void> => realmLimits?.known(realm);
const datapath = await NodeDataPath.create({ node: opts.id, mode: opts.datapath as DataPathMode, log, poolBytes: poolMb * 2 ** 20, poolBytesFor, poolSizeKnown, busyPollUs, cross }).catch((e: unknown) => {
  log.fatal({ err: e }, 'cannot start the data path');
  process.exit(1);
});
const bus = await connectBus({ servers: [opts.nats], name: opts.id, replicas: natsReplicas, pingIntervalMs: Number(opts.natsPingMs), ordered: opts.natsOrdered === true, ...(opts.natsMonitor === undefined ? {} : { monitorUrl: opts.natsMonitor }) });
const realmsKv = await bus.kv(BUCKET.realms);
// Programs over a connection of their own: on the control plane's connection every reply behind a
// bundle (~100 KB) waits for all of it; the spawn's own record create is acknowledged while its node
// fetches (a KV write behind a 100 KB read: 1.8-2.8 ms, against 0.8-1.5 with the read elsewhere).
const programsBus = await connectBus({ servers: [opts.nats], name: `${opts.id}-programs`, replicas: natsReplicas, pingIntervalMs: Number(opts.natsPingMs), ordered: opts.natsOrdered === true, ...(opts.natsMonitor === undefined ? {} : { monitorUrl: opts.natsMonitor }) });
programStore = await ProgramStore.open(programsBus, realmsKv);
// A node that runs no procs fetches no programs ahead: it never runs them.
await programStore.follow((e) => log.error({ err: e }, 'programs: the watch ended; each spawn of a deployed program reads its version'), opts.procs ? (hash) => programCache.prefetch(hash) : undefined);
realmLimits = await followRealmLimits(realmsKv, (e) => log.error({ err: e }, 'realm quotas: the watch ended; new pools and hosts take the node defaults'));
// Bound on first use: the node below makes the bucket.
let namesKv: Promise<HostNameLookup> | undefined;
lookupName = (realm, key) => (namesKv ??= bus.kv(BUCKET.names, { bind: true }).then(hostNameLookup)).then((lookup) => lookup(realm, key));
const node = await startNode({
  id: opts.id,
  ...capacity,
  procs: opts.procs,
  programs,
  deployed: { store: programStore, cache: programCache },
  bus,
  launcher: isolation.launcher,
  isolation: isolation.status,
  retention,
  logger: log,
  datapath,
  ...(gatewayPort === undefined ? {} : { gateway: { port: gatewayPort, host: opts.gatewayHost, limits: JSON.parse(opts.gatewayLimits) as Partial<GatewayLimits>, onListening: (port: number) => process.send?.({ t: 'gateway-listening', id: opts.id, port }) } }),
  appendLog: (pid, _stream, data) => appendFileSync(join(logDir, `${pid}.log`), data),
  // Holding the lease without a scheduler would stall the cluster: leave, so that it lapses.
  onFatal: (e) => {
    log.fatal({ err: e }, 'could not start the scheduler; exiting so that a standby takes over');
    process.exit(1);
  },
});

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await node.stop();
  await programsBus.close();
  await bus.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop()); // the launcher is gone: do not linger as an orphan
process.on('SIGINT', () => void stop());
process.send?.({ t: 'node-ready', id: opts.id });
log.info({ nats: splitServers([opts.nats]).map((u) => new URL(u).host) }, 'node up'); // the URLs may carry a password

/**
 * The host launcher this node's isolation mode and machine allow: sandboxed hosts, plain ones (saying
 * which protections are missing), or, when isolation is required and missing, none at all.
 */
function hostIsolation(mode: IsolationMode): { launcher: HostLauncher; status: { sandboxed: boolean; missing: string[] } } {
  const services = { natsUrl: hostNatsUrl, lookupName: (realm: string, key: string) => lookupName?.(realm, key) ?? Promise.resolve(undefined) };
  const st = mode === 'off' ? { sandboxed: false, missing: ['proc host sandbox: off (isolation: off)'] } : isolationStatus();
  if (st.sandboxed) {
    const sandbox = new HostSandbox({ dataDir: opts.dataDir, natsUrls: splitServers([hostNats]), programs: Object.values(programs), programDirFor: (realm) => programCache.dirFor(realm), diskMbFor: (realm) => realmLimits?.diskMbFor(realm) });
    realmGroup = (realm) => sandbox.uidOf(realm);
    log.info({ landlockAbi: isolationStatus().landlockAbi }, 'proc hosts are sandboxed: a uid per realm, Landlock, seccomp');
    const cgroups = new HostCgroups(opts.id);
    const missing = cgroups.version === undefined ? ['cgroups: neither v2 with memory, cpu and pids nor v1 with all three: hosts have no memory, CPU or pids limits'] : [];
    if (missing.length > 0) log.warn({ missing }, 'proc hosts are sandboxed but not limited');
    return { launcher: new ForkHostLauncher({ ...services, sandbox, cgroups, onWarning: (m) => log.warn(m) }), status: { sandboxed: true, missing } };
  }
  if (mode === 'required') {
    log.error({ missing: st.missing }, 'isolation is required but unavailable: no proc host will start');
    const refuse: HostLauncher = { start: (hostId) => Promise.reject(new HostStartError(hostId, `isolation is required but unavailable: ${st.missing.join('; ')}`)) };
    return { launcher: refuse, status: { sandboxed: false, missing: st.missing } };
  }
  if (mode === 'auto') log.warn({ missing: st.missing }, 'proc hosts are NOT sandboxed');
  return { launcher: new ForkHostLauncher(services), status: { sandboxed: false, missing: st.missing } };
}
