/** What the `datapath` suite (playing the node manager) and its host processes say to each other over IPC. */

/**
 * `remote` is the node-to-node channel (src/datapath/remote.ts): the two hosts act as two nodes, each
 * with a pool of its own, over TCP loopback — the path procs on different nodes take. Not one of the
 * issue's same-node comparisons; reported for what one copy across nodes costs.
 */
export type Transport = 'bpf' | 'userspace' | 'tcp' | 'http' | 'nats' | 'remote';
export const TRANSPORTS: readonly Transport[] = ['bpf', 'userspace', 'remote', 'tcp', 'http', 'nats'];
export type Role = 'client' | 'server' | 'forger';
/** Where the forger attacks: the kernel path, the hub, or the server's node over the channel. */
export type ForgeMode = 'bpf' | 'userspace' | 'remote';

/**
 * Endpoint ids per role and data-path mode. Realm A holds the client and the server, realm B the forger.
 * Each host has one endpoint per mode (BPF and hub), both over realm A's one pool.
 */
export const ENDPOINTS: Record<Role, { bpf: number; userspace: number; remote: number }> = {
  client: { bpf: 10, userspace: 110, remote: 310 },
  server: { bpf: 11, userspace: 111, remote: 311 },
  forger: { bpf: 20, userspace: 120, remote: 320 },
};
/** Realm A's pool: room for the largest window of 1 MiB requests, with slack. */
export const POOL_A_BYTES = 64 << 20;
export const POOL_A_CLASSES = [
  { sizeBytes: 256, slots: 512 },
  { sizeBytes: 4096, slots: 256 },
  { sizeBytes: 64 << 10, slots: 64 },
  { sizeBytes: 1 << 20, slots: 32 },
];
/** Realm ids in the kernel maps (0 is the system realm) and names at the hub. */
export const REALM_A = { id: 1, name: 'a' } as const;
export const REALM_B = { id: 2, name: 'b' } as const;

export type HostCommand =
  | { op: 'prepare'; transport: Transport; port?: number; url?: string; window: number }
  | { op: 'serve'; transport: Transport; url?: string }
  | { op: 'latency'; transport: Transport; sizeBytes: number; count: number; warmup: number }
  | { op: 'throughput'; transport: Transport; sizeBytes: number; window: number; durationMs: number }
  | { op: 'cpu' }
  | { op: 'forge'; periodMs: number; mode: ForgeMode; port?: number }
  | { op: 'forge-stop'; mode: ForgeMode }
  | { op: 'stats' }
  | { op: 'exit' };
