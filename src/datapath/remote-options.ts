import type { Timers } from '../ports/types.js';
import { DEFAULT_IN_FLIGHT_MAX } from './credits.js';
import type { Pool } from './pool.js';
import type { Refusal } from './remote-wire.js';

/** The node-to-node channel's seams, options (every bound named, units last) and figures. */

/** What the channel needs from the node manager on its own node. */
export interface LocalSide {
  /** The realm of an endpoint on this node, undefined when there is none. */
  realmOf(endpoint: number): string | undefined;
  isExportedTo(endpoint: number, realm: string): boolean;
  /** The realm's pool on this node. */
  pool(realm: string): Pool | undefined;
  /** Hands a 32-byte descriptor frame to a local endpoint's link; false when that link is backlogged. */
  deliver(frame: Buffer): boolean;
}

export interface RemoteChannelOptions {
  nodeId: string;
  local: LocalSide;
  timers: Timers;
  host: string;
  /** 0: any free port. */
  port: number;
  payloadBytesMax: number;
  /** Sends to one node awaiting their answer. */
  pendingPerPeerMax: number;
  /** Payload bytes to one node awaiting their answer. */
  bytesInFlightPerPeerMax: number;
  /** Unconsumed messages per (remote source, local destination): the senders' credit window. */
  creditsPerPairMax: number;
  /** Control frames (ACK, NACK, credits) queued towards a peer that is not reading: beyond, it is cut off. */
  controlBacklogBytesMax: number;
  /** (source, destination) pairs tracked per connection. */
  pairsPerPeerMax: number;
  redialDelayMsMin: number;
  redialDelayMsMax: number;
  /**
   * The cluster's secret: a peer proves it holds it (an HMAC over our nonce) before any frame of its
   * counts (src/datapath/remote-auth.ts). Undefined: no authentication (in-process tests only).
   */
  secret: string | undefined;
}

export const DEFAULT_REMOTE_OPTIONS = {
  host: '127.0.0.1',
  port: 0,
  payloadBytesMax: 16 << 20,
  pendingPerPeerMax: 4096,
  bytesInFlightPerPeerMax: 64 << 20,
  creditsPerPairMax: DEFAULT_IN_FLIGHT_MAX,
  controlBacklogBytesMax: 4 << 20,
  pairsPerPeerMax: 65_536,
  redialDelayMsMin: 50,
  redialDelayMsMax: 2000,
  secret: undefined,
} as const;

export interface RemoteStats {
  peers: number;
  sent: number;
  delivered: number;
  received: number;
  refusedOut: Record<Refusal, number>;
  refusedIn: Record<Refusal, number>;
  peerGone: number;
  pending: number;
  bytesInFlight: number;
  reclaimedBuffers: number;
  creditsDropped: number;
  /** Connections cut off for speaking something that is not the protocol. */
  connectionFaults: number;
  /** Connections cut off for sending anything before proving they hold the cluster's secret. */
  unauthenticated: number;
}

