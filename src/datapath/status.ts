import type { RejectCounts } from './ownership.js';
import type { RemoteStats } from './remote-options.js';

/** What a node's node-to-node side counts (src/node/datapath/cross.ts), beside its channel's own figures. */
export interface CrossNodeCounts {
  routed: number;
  refused: number;
  indexCollisions: number;
  goneAnnounced: number;
  goneHeard: number;
}

export type CrossNodeStats = RemoteStats & CrossNodeCounts & { peersKnown: number; goneRecent: number[] };

/** A node's data path as `sigma datapath` shows it (the node's answer to a `datapath-status` request). */
export interface DataPathStatus {
  mode: 'bpf' | 'userspace';
  reason: string;
  endpoints: number;
  pools: Record<string, { bytesTotal: number; bytesFree: number; bytesUsed: number; hosts: number }>;
  /** Descriptors refused by the kernel verdict or the hub (forged source, other realm, unknown destination, ...). */
  violations: Record<string, number>;
  /** Descriptors refused by receiving endpoints (forged offsets, stale generations, wrong owners), as hosts last reported. */
  receiverRejects: RejectCounts;
  /** Buffers and bytes taken back from procs and hosts that went away. */
  reclaimed: { buffers: number; bytes: number };
  hubRouted: number;
  /** Payloads the hub copied from one realm's pool into another's (calls to exported endpoints and their answers). */
  hubCopied: number;
  /** BPF mode: descriptors the verdict saw and rejected, over this node's endpoints. */
  kernel?: { msgs: number; rejects: number; bytes?: number };
  /** The node-to-node channel: connected peers, sends, refusals each way by reason, buffers reclaimed from dead peers. */
  remote?: CrossNodeStats;
}

/** What a host reports of its data path to its node manager (`dp-stats`), summed into DataPathStatus. */
export interface HostDataPathStats {
  endpoints: number;
  /** Descriptors the receiving endpoints refused (forged offsets, stale generations, wrong owners). */
  rejected: RejectCounts;
  /** Frames for an endpoint this host does not (or no longer) serve. */
  misrouted: number;
  received: number;
  sent: number;
}
