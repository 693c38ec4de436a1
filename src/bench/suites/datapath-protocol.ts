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
/**
 * `tcpspin` is `tcp` between two processes that busy-poll and pin themselves to a CPU as proc hosts do
 * (src/datapath/busy-poll.ts, homes as src/node/cpu-homes.ts gives them): the baseline for what the
 * polling buys, apart from the path.
 */
export type Transport = 'bpf' | 'bpfevent' | 'userspace' | 'tcp' | 'tcpspin' | 'http' | 'nats' | 'remote';
export const TRANSPORTS: readonly Transport[] = ['bpf', 'bpfevent', 'userspace', 'remote', 'tcp', 'tcpspin', 'http', 'nats'];
/** The transports between host processes (datapath-host.ts), each with the pair of hosts it runs between. */
export type HostTransport = Exclude<Transport, 'bpf' | 'bpfevent' | 'userspace'>;
/**
 * Host processes, each a role: `client`/`server` carry tcp, http and nats; `spin-*` carry tcpspin (they
 * busy-poll and pin, which must not leak into the others); `remote-*` are the two nodes of `remote`;
 * `forger` is realm B's node sending to `remote-server`. A transport's CPU is its own hosts' CPU.
 */
export type Role = 'client' | 'server' | 'spin-client' | 'spin-server' | 'remote-client' | 'remote-server' | 'forger';
export const HOST_PAIRS: Record<HostTransport, { client: Role; server: Role }> = {
  tcp: { client: 'client', server: 'server' },
  http: { client: 'client', server: 'server' },
  nats: { client: 'client', server: 'server' },
  tcpspin: { client: 'spin-client', server: 'spin-server' },
  remote: { client: 'remote-client', server: 'remote-server' },
};
export const ROLES: readonly Role[] = ['client', 'server', 'spin-client', 'spin-server', 'remote-client', 'remote-server', 'forger'];
/** Environment of a spinning host: its busy-poll window (µs) and its home CPU (absent: none, as on a one-CPU node). */
export const SPIN_WINDOW_ENV = 'SIGMA_BENCH_BUSY_POLL_US';
export const SPIN_HOME_ENV = 'SIGMA_BENCH_HOME_CPU';
/** The transports between real procs on a real node (src/bench/suites/datapath-procs.ts); the rest run between host processes. */
export const PROC_TRANSPORTS = ['bpf', 'userspace'] as const;

/** Endpoint ids per role on the `remote` transport. Realm A holds the client and the server, realm B the forger. */
export const ENDPOINTS: Record<'client' | 'server' | 'forger', { remote: number }> = {
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
