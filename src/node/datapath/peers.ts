import type { Logger } from 'pino';
import { decodeNodeRecord, nodeDataPathAddress, type NodeRecord } from '../../control/protocol/index.js';
import type { Kv, KvWatch } from '../../nats/types.js';
import type { TimerHandle, Timers } from '../../ports/types.js';
import type { CrossNode } from './cross.js';

/**
 * Learns the data-path peers from heartbeats, on core NATS and in the nodes bucket (which gets only
 * every few, and keeps them for a node that starts later): every one that carries a channel address makes
 * its node a peer (the channel dials it, or waits for its dial); a node whose heartbeats stop for a sweep
 * of `nodeTimeoutMs` is removed — its connection closed, calls waiting on it failed as peer-gone. A node
 * that comes back heartbeats again and is re-added (a new port is fine).
 */
export interface PeerFollower {
  /** A heartbeat from core NATS. */
  heard(rec: NodeRecord): void;
  stop(): void;
}

export async function followPeers(o: { self: string; nodesKv: Kv; cross: CrossNode; timers: Timers; nodeTimeoutMs: number; log: Logger }): Promise<PeerFollower> {
  /** node -> heard from since the last sweep */
  const fresh = new Map<string, boolean>();
  let stopped = false;
  let timer: TimerHandle | undefined;
  // Armed only while there are peers: a node alone wakes for nothing.
  const arm = (): void => {
    timer ??= o.timers.setTimeout(sweep, o.nodeTimeoutMs);
  };
  /** This node's own beat came back since the last sweep: heartbeats flow, so a silent peer is silent. */
  let selfHeard = false;
  const heard = (rec: NodeRecord): void => {
    if (rec.id === o.self) selfHeard = true;
    const addr = nodeDataPathAddress(rec);
    if (stopped || rec.id === o.self || addr === undefined) return;
    if (!o.cross.addPeer(rec.id, addr)) return;
    fresh.set(rec.id, true);
    arm();
  };
  const watch: KvWatch = await o.nodesKv.watch({ include: 'latest' });
  void (async () => {
    try {
      for await (const e of watch) {
        if (e.key === o.self) continue;
        if (e.value === null) {
          fresh.delete(e.key);
          o.cross.removePeer(e.key);
          continue;
        }
        const rec = decodeNodeRecord(e.value);
        if (rec !== undefined && rec.id === e.key) heard(rec);
      }
    } catch (err) {
      if (!stopped) o.log.error({ err }, 'data path: the nodes watch ended; peers are no longer followed');
    }
  })();
  const sweep = (): void => {
    timer = undefined;
    if (stopped) return;
    // Silence says nothing while no heartbeat reaches this node at all (its NATS server died, the
    // nodes stream elects): the chaos datapath scenario had nodes close their channels to live peers.
    const flowing = selfHeard;
    selfHeard = false;
    if (!flowing) return arm();
    for (const [node, heard] of fresh) {
      if (heard) fresh.set(node, false);
      else {
        fresh.delete(node);
        o.log.warn({ node }, 'data path: peer stopped heartbeating; its connection is closed');
        o.cross.removePeer(node);
      }
    }
    if (fresh.size > 0) arm();
  };
  return {
    heard,
    stop() {
      stopped = true;
      timer?.cancel();
      watch.stop();
    },
  };
}
