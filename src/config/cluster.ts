import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { BUSY_POLL_US_MAX, DEFAULT_BUSY_POLL_US } from '../datapath/busy-poll.js';
import { parseRoute, RouteError, type RouteInput, type RouteRecord } from '../control/protocol/routes.js';
import { QUOTA_FIELDS, QUOTA_VALUE_MAX, realmQuota, type RealmQuota } from '../control/protocol/records.js';
import { RETENTION_DEFAULT, type Retention } from '../control/retention.js';

/** One node: a machine, or a process standing for one in local clusters. Units last: mcpu, memMb. */
export interface NodeConfig {
  id: string;
  mcpu: number;
  memMb: number;
  /** Best-effort procs the node runs at once. */
  beSlots: number;
  /** Where its node-to-node data-path channel listens (port 0: any free one; peers learn it from the heartbeat). */
  dpHost: string;
  dpPort: number;
  /** Its endpoint-id range (src/node/datapath/ids.ts): distinct per node; default its position in the list, from 1. */
  dpIndex: number;
  /** Its gateway's HTTP port: default gateway.port plus its position in the list from 0 (0: any free one). */
  gatewayPort: number;
  /**
   * Whether the scheduler places procs on it (default true). A node that runs none still competes for the
   * scheduler lease and serves its gateway: a control-plane machine, beside a NATS server, whose death
   * takes no workload with it (docs/machines.md).
   */
  procs: boolean;
}

/**
 * Embedded: `embeddedServers` nats-servers on this machine (client ports port, port+1, ...; route ports
 * clusterPort, clusterPort+1, ...), clustered when more than one. External: an existing cluster's URLs.
 * `replicas`: of every bucket, stream and object store the system creates (3 on a cluster of three).
 */
export type NatsConfig = { embedded: true; port: number; embeddedServers: number; clusterPort: number; replicas: number } | { embedded: false; servers: string[]; replicas: number };
export type DataPathMode = 'auto' | 'bpf' | 'userspace';

export interface ClusterConfig {
  name: string;
  nodes: NodeConfig[];
  /** Realms created when the cluster starts (more can be created at run time). */
  realms: string[];
  /** Quotas of those realms, set when the cluster creates them (`sigma realm quota` changes them later). */
  quotas: Record<string, RealmQuota>;
  nats: NatsConfig;
  gateway: { port: number; host: string; limits: GatewayLimitsInput };
  /** Routes written into the routes bucket when the cluster starts (`sigma route` changes them at run time). */
  routes: RouteRecord[];
  datapath: DataPathMode;
  /** Shared-memory pool per (realm, node), MiB. */
  poolMb: number;
  /** How long a process of the data path keeps polling after traffic, µs (src/datapath/busy-poll.ts); 0: never. */
  busyPollUs: number;
  /** Proc host confinement (src/node/sandbox/): `auto` sandboxes hosts where the node can and says what is missing where it cannot; `required` refuses to start hosts without it; `off` never sandboxes. */
  isolation: IsolationMode;
  /** How long exited procs stay in the proc table: per realm the newest maxPerRealm, none older than maxAgeMs. */
  retention: Retention;
  /** JetStream store, proc logs and other state; relative paths are relative to the working directory. */
  dataDir: string;
  /** Program name -> module path (relative to the config file's directory) that procs can run. */
  programs: Record<string, string>;
}

/** What a cluster.config.ts may say; everything has a default. */
export interface ClusterInput {
  name?: string;
  /** A count of identical nodes, or the list. */
  nodes?: number | Array<Partial<NodeConfig>>;
  node?: { mcpu?: number; memMb?: number; beSlots?: number };
  realms?: string[];
  /** Per realm of `realms`: live procs, reserved mcpu and memory (MB) it may hold at once. */
  quotas?: Record<string, RealmQuota>;
  /** `embedded` (the default) starts nats-servers (one unless `embeddedServers`); `servers` joins an existing NATS cluster. */
  nats?: { embedded?: boolean; port?: number; servers?: string[]; embeddedServers?: number; clusterPort?: number; replicas?: number };
  /** HTTP ingress: every node listens on port + its position (or its own gatewayPort), on host (default all interfaces). */
  gateway?: { port?: number; host?: string; limits?: GatewayLimitsInput };
  routes?: RouteInput[];
  datapath?: DataPathMode;
  /** Shared-memory pool per (realm, node), MiB (default 64; the largest payload is a quarter of it). */
  poolMb?: number;
  /** Busy-poll window after data-path traffic, µs (default 200; 0 turns it off: the loop always blocks). */
  busyPollUs?: number;
  isolation?: IsolationMode;
  retention?: Partial<Retention>;
  dataDir?: string;
  programs?: Record<string, string>;
}

/** The gateway's bounds (src/gateway/gateway.ts GatewayLimits): each a positive whole number; unset ones take the defaults. */
export type GatewayLimitsInput = Partial<Record<'requestsInFlightMax' | 'connectionsMax' | 'bodyTimeoutMs' | 'writeTimeoutMs' | 'keepAliveTimeoutMs' | 'retryAfterS', number>>;
const GATEWAY_LIMITS = ['requestsInFlightMax', 'connectionsMax', 'bodyTimeoutMs', 'writeTimeoutMs', 'keepAliveTimeoutMs', 'retryAfterS'] as const;
const GATEWAY_LIMIT_MAX = 1_000_000_000;

function gatewayLimits(input: Record<string, unknown>): GatewayLimitsInput {
  const out: GatewayLimitsInput = {};
  for (const [k, v] of Object.entries(input)) {
    if (!(GATEWAY_LIMITS as readonly string[]).includes(k)) throw new ClusterConfigError(`gateway.limits.${k}`, `is not a gateway limit (${GATEWAY_LIMITS.join(', ')})`);
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > GATEWAY_LIMIT_MAX) throw new ClusterConfigError(`gateway.limits.${k}`, `must be an integer in [1, ${GATEWAY_LIMIT_MAX}], got ${String(v)}`);
    out[k as (typeof GATEWAY_LIMITS)[number]] = v as number;
  }
  return out;
}

export type IsolationMode = 'off' | 'auto' | 'required';
export const ISOLATION_MODES: readonly IsolationMode[] = ['off', 'auto', 'required'];

export const DEFAULT_NODE_COUNT = 3;
export const DEFAULT_NODE_MCPU = 2000;
export const DEFAULT_NODE_MEM_MB = 4096;
export const DEFAULT_BE_SLOTS = 64;
export const DEFAULT_NATS_PORT = 4222;
export const DEFAULT_NATS_CLUSTER_PORT = 6222;
/** Embedded servers on one machine: enough for a Raft quorum that survives two losses. */
export const EMBEDDED_NATS_SERVERS_MAX = 5;
/** JetStream's largest replica count (src/nats/real.ts REPLICAS_MAX). */
export const NATS_REPLICAS_MAX = 5;
export const DEFAULT_GATEWAY_PORT = 8080;
export const NODES_MAX = 1023; // one endpoint-id range each (src/node/datapath/ids.ts)
/** Best-effort procs one node may run at once. */
export const BE_SLOTS_MAX = 100_000;
export const PORT_MAX = 65_535;
export const DEFAULT_POOL_MB = 64;
/** Descriptor offsets are u32: a pool is below 4 GiB. */
export const POOL_MB_MAX = 4095;
const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class ClusterConfigError extends Error {
  readonly type = 'cluster-config';
  constructor(readonly field: string, detail: string) {
    super(`cluster config: ${field} ${detail}`);
    this.name = 'ClusterConfigError';
  }
}

/** Validates and fills defaults. Every problem names the field and what would be accepted. */
export function parseCluster(input: ClusterInput): Either<ClusterConfigError, ClusterConfig> {
  try {
    return right(build(input));
  } catch (e) {
    if (e instanceof ClusterConfigError) return left(e);
    throw e;
  }
}

/** For cluster.config.ts: typed input, validated at load; throws ClusterConfigError on bad input. */
export function defineCluster(input: ClusterInput = {}): ClusterConfig {
  return build(input);
}

function build(input: ClusterInput): ClusterConfig {
  const name = input.name ?? 'sigma';
  if (!ID_RE.test(name)) throw new ClusterConfigError('name', `must match ${ID_RE}, got "${name}"`);
  const gatewayPort = port('gateway.port', input.gateway?.port ?? DEFAULT_GATEWAY_PORT);
  const nodes = buildNodes(input, gatewayPort);
  const realms = input.realms ?? ['default'];
  for (const r of realms) if (!ID_RE.test(r)) throw new ClusterConfigError('realms', `entry "${r}" must match ${ID_RE}`);
  if (new Set(realms).size !== realms.length) throw new ClusterConfigError('realms', 'has duplicates');
  const quotas = buildQuotas(input.quotas ?? {}, realms);
  const datapath = input.datapath ?? 'auto';
  if (!['auto', 'bpf', 'userspace'].includes(datapath)) throw new ClusterConfigError('datapath', `must be auto, bpf or userspace, got "${datapath}"`);
  const routes = buildRoutes(input.routes ?? [], realms);
  const poolMb = input.poolMb ?? DEFAULT_POOL_MB;
  if (!Number.isInteger(poolMb) || poolMb < 1 || poolMb > POOL_MB_MAX) throw new ClusterConfigError('poolMb', `must be an integer in [1, ${POOL_MB_MAX}], got ${poolMb}`);
  const busyPollUs = input.busyPollUs ?? DEFAULT_BUSY_POLL_US;
  if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > BUSY_POLL_US_MAX) throw new ClusterConfigError('busyPollUs', `must be an integer in [0, ${BUSY_POLL_US_MAX}], got ${busyPollUs}`);
  const isolation = input.isolation ?? 'auto';
  if (!ISOLATION_MODES.includes(isolation)) throw new ClusterConfigError('isolation', `must be off, auto or required, got "${String(isolation)}"`);
  return {
    name,
    nodes,
    realms,
    quotas,
    nats: buildNats(input.nats ?? {}),
    gateway: { port: gatewayPort, host: input.gateway?.host ?? '0.0.0.0', limits: gatewayLimits(input.gateway?.limits ?? {}) },
    routes,
    datapath,
    poolMb,
    busyPollUs,
    isolation,
    retention: buildRetention(input.retention ?? {}),
    dataDir: input.dataDir ?? '.sigma',
    programs: { ...(input.programs ?? {}) },
  };
}

function buildRoutes(input: RouteInput[], realms: string[]): RouteRecord[] {
  const out: RouteRecord[] = [];
  for (const [i, r] of input.entries()) {
    const route = parseRoute(r);
    if (route instanceof RouteError) throw new ClusterConfigError(`routes[${i}].${route.field}`, route.message.replace(/^route: \S+ /, ''));
    if (!realms.includes(route.realm)) throw new ClusterConfigError(`routes[${i}].realm`, `names no realm of \`realms\` (${realms.join(', ')})`);
    out.push(route);
  }
  if (new Set(out.map((r) => `${r.realm}.${r.name}`)).size !== out.length) throw new ClusterConfigError('routes', 'has two routes of one name in one realm');
  return out;
}

function buildNodes(input: ClusterInput, gatewayPort: number): NodeConfig[] {
  const mcpu = input.node?.mcpu ?? DEFAULT_NODE_MCPU;
  const memMb = input.node?.memMb ?? DEFAULT_NODE_MEM_MB;
  const beSlots = input.node?.beSlots ?? DEFAULT_BE_SLOTS;
  const list = typeof input.nodes === 'number' || input.nodes === undefined ? Array.from({ length: input.nodes ?? DEFAULT_NODE_COUNT }, () => ({})) : input.nodes;
  if (list.length < 1 || list.length > NODES_MAX) throw new ClusterConfigError('nodes', `must be between 1 and ${NODES_MAX}, got ${list.length}`);
  const nodes = list.map((n: Partial<NodeConfig>, i) => ({ id: n.id ?? `node-${i + 1}`, mcpu: n.mcpu ?? mcpu, memMb: n.memMb ?? memMb, beSlots: n.beSlots ?? beSlots, dpHost: n.dpHost ?? '127.0.0.1', dpPort: n.dpPort ?? 0, dpIndex: n.dpIndex ?? i + 1, gatewayPort: n.gatewayPort ?? (gatewayPort === 0 ? 0 : gatewayPort + i), procs: n.procs ?? true }));
  for (const n of nodes) {
    if (!ID_RE.test(n.id)) throw new ClusterConfigError('nodes[].id', `"${n.id}" must match ${ID_RE}`);
    if (!Number.isInteger(n.mcpu) || n.mcpu < 1) throw new ClusterConfigError(`nodes[${n.id}].mcpu`, `must be a positive integer (1000 = one core), got ${n.mcpu}`);
    if (!Number.isInteger(n.memMb) || n.memMb < 1) throw new ClusterConfigError(`nodes[${n.id}].memMb`, `must be a positive integer, got ${n.memMb}`);
    if (!Number.isInteger(n.beSlots) || n.beSlots < 1 || n.beSlots > BE_SLOTS_MAX) throw new ClusterConfigError(`nodes[${n.id}].beSlots`, `must be an integer in [1, ${BE_SLOTS_MAX}], got ${n.beSlots}`);
    if (!Number.isInteger(n.dpPort) || n.dpPort < 0 || n.dpPort > PORT_MAX) throw new ClusterConfigError(`nodes[${n.id}].dpPort`, `must be an integer in [0, ${PORT_MAX}], got ${n.dpPort}`);
    if (!Number.isInteger(n.dpIndex) || n.dpIndex < 1 || n.dpIndex > NODES_MAX) throw new ClusterConfigError(`nodes[${n.id}].dpIndex`, `must be an integer in [1, ${NODES_MAX}], got ${n.dpIndex}`);
    if (!Number.isInteger(n.gatewayPort) || n.gatewayPort < 0 || n.gatewayPort > PORT_MAX) throw new ClusterConfigError(`nodes[${n.id}].gatewayPort`, `must be an integer in [0, ${PORT_MAX}], got ${n.gatewayPort}`);
    if (typeof n.dpHost !== 'string' || n.dpHost.length === 0) throw new ClusterConfigError(`nodes[${n.id}].dpHost`, 'must be a non-empty address');
    if (typeof n.procs !== 'boolean') throw new ClusterConfigError(`nodes[${n.id}].procs`, `must be true or false, got ${JSON.stringify(n.procs)}`);
  }
  if (!nodes.some((n) => n.procs)) throw new ClusterConfigError('nodes[].procs', 'at least one node must run procs');
  if (new Set(nodes.map((n) => n.dpIndex)).size !== nodes.length) throw new ClusterConfigError('nodes[].dpIndex', 'must be distinct: each node owns its own endpoint-id range');
  if (new Set(nodes.map((n) => n.id)).size !== nodes.length) throw new ClusterConfigError('nodes', 'ids must be unique');
  return nodes;
}

function buildRetention(r: Partial<Retention>): Retention {
  const out = { ...RETENTION_DEFAULT, ...r };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ClusterConfigError(`retention.${k}`, `must be a whole number of at least 1, got ${JSON.stringify(v)}`);
  }
  return out;
}

function buildQuotas(input: Record<string, unknown>, realms: string[]): Record<string, RealmQuota> {
  const out: Record<string, RealmQuota> = {};
  for (const [realm, q] of Object.entries(input)) {
    if (!realms.includes(realm)) throw new ClusterConfigError(`quotas.${realm}`, `names no realm of \`realms\` (${realms.join(', ')})`);
    const quota = realmQuota(q);
    if (quota === undefined) throw new ClusterConfigError(`quotas.${realm}`, `must be { ${QUOTA_FIELDS.join('?, ')}? } with whole numbers in [0, ${QUOTA_VALUE_MAX}], got ${JSON.stringify(q)}`);
    out[realm] = quota;
  }
  return out;
}

function buildNats(n: NonNullable<ClusterInput['nats']>): NatsConfig {
  if (n.servers !== undefined && n.embedded === true) throw new ClusterConfigError('nats', 'cannot be both embedded and servers; pick one');
  const replicas = n.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > NATS_REPLICAS_MAX) throw new ClusterConfigError('nats.replicas', `must be an integer in [1, ${NATS_REPLICAS_MAX}], got ${replicas}`);
  if (n.servers !== undefined) {
    if (n.servers.length === 0) throw new ClusterConfigError('nats.servers', 'must list at least one URL');
    for (const s of n.servers) if (!/^(nats|tls|ws|wss):\/\/[^\s,]+$/.test(s)) throw new ClusterConfigError('nats.servers', `"${s}" is not a nats:// URL`);
    if (n.embeddedServers !== undefined) throw new ClusterConfigError('nats.embeddedServers', 'applies to embedded servers only (remove it, or `servers`)');
    return { embedded: false, servers: [...n.servers], replicas };
  }
  const embeddedServers = n.embeddedServers ?? 1;
  if (!Number.isInteger(embeddedServers) || embeddedServers < 1 || embeddedServers > EMBEDDED_NATS_SERVERS_MAX) throw new ClusterConfigError('nats.embeddedServers', `must be an integer in [1, ${EMBEDDED_NATS_SERVERS_MAX}], got ${embeddedServers}`);
  if (replicas > embeddedServers) throw new ClusterConfigError('nats.replicas', `must be at most nats.embeddedServers (${embeddedServers}): a replica needs a server of its own`);
  const p = port('nats.port', n.port ?? DEFAULT_NATS_PORT);
  return { embedded: true, port: p, embeddedServers, clusterPort: port('nats.clusterPort', n.clusterPort ?? DEFAULT_NATS_CLUSTER_PORT), replicas };
}

function port(field: string, p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > PORT_MAX) throw new ClusterConfigError(field, `must be a port in [0, ${PORT_MAX}] (0 = any free port), got ${p}`);
  return p;
}
