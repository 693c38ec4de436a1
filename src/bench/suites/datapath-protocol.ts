/** What the `datapath` suite (playing the node manager) and its host processes say to each other over IPC. */

/**
 * `remote` is the node-to-node channel (src/datapath/remote.ts): the two hosts act as two nodes, each
 * with a pool of its own, over TCP loopback — the path procs on different nodes take. Not one of the
 * issue's same-node comparisons; reported for what one copy across nodes costs.
 */
/**
 * `bpfevent` is `bpf` with busy polling off in both procs' hosts (src/datapath/busy-poll.ts): the same
 * node and procs, every frame waking a blocked event loop. Reported to show what the polling buys and costs.
 */
export type Transport = 'bpf' | 'bpfevent' | 'userspace' | 'tcp' | 'http' | 'nats' | 'remote';
export const TRANSPORTS: readonly Transport[] = ['bpf', 'bpfevent', 'userspace', 'remote', 'tcp', 'http', 'nats'];
export type Role = 'client' | 'server' | 'forger';
/** The transports between real procs on a real node (src/bench/suites/datapath-procs.ts); the rest run between host processes. */
export const PROC_TRANSPORTS = ['bpf', 'userspace'] as const;

/** Endpoint ids per role on the `remote` transport. Realm A holds the client and the server, realm B the forger. */
export const ENDPOINTS: Record<Role, { remote: number }> = {
  client: { remote: 310 },
  server: { remote: 311 },
  forger: { remote: 320 },
};
/** Realm A's pool: room for the largest window of 1 MiB requests, with slack. */
export const POOL_A_BYTES = 64 << 20;
export const POOL_A_CLASSES = [
  { sizeBytes: 256, slots: 512 },
  { sizeBytes: 4096, slots: 256 },
  { sizeBytes: 64 << 10, slots: 64 },
  { sizeBytes: 1 << 20, slots: 32 },
];
/** Realm names of the `remote` nodes. */
export const REALM_A = { id: 1, name: 'a' } as const;
export const REALM_B = { id: 2, name: 'b' } as const;

export type HostCommand =
  | { op: 'prepare'; transport: Transport; port?: number; url?: string; window: number }
  | { op: 'serve'; transport: Transport; url?: string }
  | { op: 'latency'; transport: Transport; sizeBytes: number; count: number; warmup: number }
  | { op: 'throughput'; transport: Transport; sizeBytes: number; window: number; durationMs: number }
  | { op: 'cpu' }
  | { op: 'forge'; periodMs: number; port?: number }
  | { op: 'forge-stop' }
  | { op: 'stats' }
  | { op: 'exit' };
