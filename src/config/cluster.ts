import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { BUSY_POLL_US_MAX, DEFAULT_BUSY_POLL_US } from '../datapath/busy-poll.js';
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
}

export type NatsConfig = { embedded: true; port: number } | { embedded: false; servers: string[] };
export type DataPathMode = 'auto' | 'bpf' | 'userspace';

export interface ClusterConfig {
  name: string;
  nodes: NodeConfig[];
  /** Realms created when the cluster starts (more can be created at run time). */
  realms: string[];
  /** Quotas of those realms, set when the cluster creates them (`sigma realm quota` changes them later). */
  quotas: Record<string, RealmQuota>;
  nats: NatsConfig;
  gateway: { port: number };
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
  /** `embedded` (the default) starts a nats-server; `servers` joins an existing NATS cluster. */
  nats?: { embedded?: boolean; port?: number; servers?: string[] };
  gateway?: { port?: number };
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

export type IsolationMode = 'off' | 'auto' | 'required';
export const ISOLATION_MODES: readonly IsolationMode[] = ['off', 'auto', 'required'];

export const DEFAULT_NODE_COUNT = 3;
export const DEFAULT_NODE_MCPU = 2000;
export const DEFAULT_NODE_MEM_MB = 4096;
export const DEFAULT_BE_SLOTS = 64;
export const DEFAULT_NATS_PORT = 4222;
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
  const nodes = buildNodes(input);
  const realms = input.realms ?? ['default'];
  for (const r of realms) if (!ID_RE.test(r)) throw new ClusterConfigError('realms', `entry "${r}" must match ${ID_RE}`);
  if (new Set(realms).size !== realms.length) throw new ClusterConfigError('realms', 'has duplicates');
  const quotas = buildQuotas(input.quotas ?? {}, realms);
  const datapath = input.datapath ?? 'auto';
  if (!['auto', 'bpf', 'userspace'].includes(datapath)) throw new ClusterConfigError('datapath', `must be auto, bpf or userspace, got "${datapath}"`);
  const gatewayPort = port('gateway.port', input.gateway?.port ?? DEFAULT_GATEWAY_PORT);
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
    gateway: { port: gatewayPort },
    datapath,
    poolMb,
    busyPollUs,
    isolation,
    retention: buildRetention(input.retention ?? {}),
    dataDir: input.dataDir ?? '.sigma',
    programs: { ...(input.programs ?? {}) },
  };
}

function buildNodes(input: ClusterInput): NodeConfig[] {
  const mcpu = input.node?.mcpu ?? DEFAULT_NODE_MCPU;
  const memMb = input.node?.memMb ?? DEFAULT_NODE_MEM_MB;
  const beSlots = input.node?.beSlots ?? DEFAULT_BE_SLOTS;
  const list = typeof input.nodes === 'number' || input.nodes === undefined ? Array.from({ length: input.nodes ?? DEFAULT_NODE_COUNT }, () => ({})) : input.nodes;
  if (list.length < 1 || list.length > NODES_MAX) throw new ClusterConfigError('nodes', `must be between 1 and ${NODES_MAX}, got ${list.length}`);
  const nodes = list.map((n: Partial<NodeConfig>, i) => ({ id: n.id ?? `node-${i + 1}`, mcpu: n.mcpu ?? mcpu, memMb: n.memMb ?? memMb, beSlots: n.beSlots ?? beSlots, dpHost: n.dpHost ?? '127.0.0.1', dpPort: n.dpPort ?? 0, dpIndex: n.dpIndex ?? i + 1 }));
  for (const n of nodes) {
    if (!ID_RE.test(n.id)) throw new ClusterConfigError('nodes[].id', `"${n.id}" must match ${ID_RE}`);
    if (!Number.isInteger(n.mcpu) || n.mcpu < 1) throw new ClusterConfigError(`nodes[${n.id}].mcpu`, `must be a positive integer (1000 = one core), got ${n.mcpu}`);
    if (!Number.isInteger(n.memMb) || n.memMb < 1) throw new ClusterConfigError(`nodes[${n.id}].memMb`, `must be a positive integer, got ${n.memMb}`);
    if (!Number.isInteger(n.beSlots) || n.beSlots < 1 || n.beSlots > BE_SLOTS_MAX) throw new ClusterConfigError(`nodes[${n.id}].beSlots`, `must be an integer in [1, ${BE_SLOTS_MAX}], got ${n.beSlots}`);
    if (!Number.isInteger(n.dpPort) || n.dpPort < 0 || n.dpPort > PORT_MAX) throw new ClusterConfigError(`nodes[${n.id}].dpPort`, `must be an integer in [0, ${PORT_MAX}], got ${n.dpPort}`);
    if (!Number.isInteger(n.dpIndex) || n.dpIndex < 1 || n.dpIndex > NODES_MAX) throw new ClusterConfigError(`nodes[${n.id}].dpIndex`, `must be an integer in [1, ${NODES_MAX}], got ${n.dpIndex}`);
    if (typeof n.dpHost !== 'string' || n.dpHost.length === 0) throw new ClusterConfigError(`nodes[${n.id}].dpHost`, 'must be a non-empty address');
  }
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
  if (n.servers !== undefined) {
    if (n.servers.length === 0) throw new ClusterConfigError('nats.servers', 'must list at least one URL');
    for (const s of n.servers) if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(s)) throw new ClusterConfigError('nats.servers', `"${s}" is not a nats:// URL`);
    return { embedded: false, servers: [...n.servers] };
  }
  return { embedded: true, port: port('nats.port', n.port ?? DEFAULT_NATS_PORT) };
}

function port(field: string, p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > PORT_MAX) throw new ClusterConfigError(field, `must be a port in [0, ${PORT_MAX}] (0 = any free port), got ${p}`);
  return p;
}
