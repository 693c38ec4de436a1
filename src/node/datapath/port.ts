import type { DataPathStatus } from '../../datapath/status.js';
import type { HostDataPathStats } from '../../datapath/status.js';
import type { NameLookup } from '../../datapath/proc-data.js';
import type { ToHost } from '../../host/protocol.js';
import type { LocalDataPathApi } from '../../proc/data.js';
import type { HostHandle } from '../host-process.js';
import type { DataPathAddress } from '../../control/protocol/index.js';
import type { CrossNode } from './cross.js';

/**
 * What the NodeManager actor asks of the data path. The real binding is src/node/datapath/node-datapath.ts (memfds,
 * sockets, BPF maps); the simulator's is src/sim/datapath.ts (real Pools over ArrayBuffers).
 */
export interface DataPathPort {
  readonly mode: 'bpf' | 'userspace';
  /** Before a host is forked: the realm's pool (created on first use) and the host's connection. */
  prepareHost(hostId: string, realm: string): Promise<HostWiring>;
  /** The host is up: hand it its socket and tell it where its pool is. False if it cannot take them. */
  attachHost(wiring: HostWiring, handle: HostHandle): boolean;
  /**
   * A fresh endpoint for a proc on `hostId`, registered in the maps / hub, reachable from the realms of
   * `exports` too (spec.exports); undefined without a data path.
   */
  openEndpoint(hostId: string, exports?: readonly string[]): number | undefined;
  /** The procs are gone: unregister, reclaim their buffers (one pass per realm), tell the realm's hosts. */
  closeEndpoints(endpoints: readonly number[], afterCrash?: boolean): void;
  /** The host is gone (or never came up): everything it held is reclaimed; the last host of a realm frees the pool. */
  hostGone(hostId: string): void;
  noteHostStats(hostId: string, stats: HostDataPathStats): void;
  /**
   * An endpoint of `realm` in the node process (gateway, `sigma call`); undefined if the realm has no
   * pool here, unless `keep` (the gateway's): then the pool is made and kept until releaseLocal.
   */
  local(realm: string, lookup: NameLookup, options?: { keep?: boolean }): LocalDataPathApi | undefined;
  releaseLocal?(realm: string): void;
  status(): DataPathStatus;
  /** Where this node's node-to-node channel listens (its heartbeat carries it); undefined without one. */
  peerAddress?(): DataPathAddress | undefined;
  /** The node-to-node side, when procs here reach other nodes (src/node/datapath/cross.ts). */
  readonly cross?: CrossNode | undefined;
  close(): void;
}

export interface HostWiring {
  hostId: string;
  /** File descriptors the host inherits at fork (fd 4 onwards): the realm's pool memfd, the host's end of its data-path connection. */
  fds: number[];
  attach: Extract<ToHost, { t: 'dp-attach' }>;
}

export type { DataPathStatus };
