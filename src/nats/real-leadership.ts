import type { JetStreamManager } from '@nats-io/jetstream';
import { InvalidArgumentError } from './errors.js';
import { bounded, classify } from './real-common.js';
import type { Msg, StreamLeadership } from './types.js';

/** A replica heard from longer ago than this (ns, as stream info says) is not counted healthy. */
const REPLICA_ACTIVE_MAX_NS = 1_000_000_000;
/**
 * A replica silent this long (ns) is taken for down or cut off, not slow: a server back from such an
 * absence may hold a replica that lacks writes it acknowledged before (see StreamLeadership.replicasOf).
 */
const REPLICA_ABSENT_NS = 3_000_000_000;
/** The same for a meta group peer: its leader hears from each about once a second, so two beats' slack. */
const META_PEER_ACTIVE_MAX_NS = 2_500_000_000;

/**
 * Whether a Raft peer, as stream info or `/jsz` report it, was heard from within `maxNs`. An `active`
 * of 0 is not "just now": nats-server 2.9 reports 0 for a peer it has never heard from (a known peer
 * starts with no timestamp after an election or a restart, and `clusterInfo` leaves the duration at 0),
 * so a peer killed before the leader first heard it would read as fresh for good.
 */
export function heardWithin(p: { current?: boolean; offline?: boolean; active?: number }, maxNs: number): boolean {
  return p.current === true && p.offline !== true && p.active !== undefined && p.active > 0 && p.active <= maxNs;
}

/** What the nats.js binding (real.ts) lends its stream leadership. */
export interface LeadershipHost {
  serverName(): string | undefined;
  jsm(): Promise<JetStreamManager>;
  request(subject: string, data: Uint8Array): Promise<Msg>;
  timeoutMs: number;
  /** Replicas per bucket, each on a server of its own: the meta group has at least this many members. */
  replicas: number;
  /** This machine's own server's HTTP monitoring (`http://host:8222`), where the meta leader is asked. */
  monitorUrl?: string;
}

/** What `/jsz` says of the meta group (the fields read here). */
interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number; replicas?: Array<{ name: string; current?: boolean; offline?: boolean; active?: number }> };
}

/** Stream leadership over JetStream's API (stream info, leader stepdown) and the server's `/jsz`. */
export function realLeadership(h: LeadershipHost): StreamLeadership {
  const stream = (bucket: string): string => `KV_${bucket}`;
  return {
    server: h.serverName,
    async leaderOf(bucket) {
      const what = `stream info ${stream(bucket)}`;
      const si = await bounded((await h.jsm()).streams.info(stream(bucket)), what, h.timeoutMs).catch((e: unknown) => Promise.reject(classify(e, what, h.timeoutMs)));
      const replicas = si.cluster?.replicas ?? [];
      // Heard from lately, too: a replica cut off a moment ago still reads as current, and a stepdown
      // handed leadership to one (the chaos partition scenario: no scheduler for 11 s).
      return replicas.length > 0 && replicas.every((r) => heardWithin(r, REPLICA_ACTIVE_MAX_NS)) ? si.cluster?.leader : undefined;
    },
    async replicasOf(bucket) {
      const what = `stream info ${stream(bucket)}`;
      const si = await bounded((await h.jsm()).streams.info(stream(bucket)), what, h.timeoutMs).catch((e: unknown) => Promise.reject(classify(e, what, h.timeoutMs)));
      const replicas = si.cluster?.replicas;
      if (replicas === undefined) return undefined;
      const leader = si.cluster?.leader;
      return {
        ...(leader === undefined || leader === '' ? {} : { leader }),
        // Never heard (active 0) is neither healthy nor absent: a new leader has heard no one yet.
        peers: replicas.map((r) => ({ name: r.name, healthy: heardWithin(r, REPLICA_ACTIVE_MAX_NS), absent: r.offline === true || r.active > REPLICA_ABSENT_NS })),
      };
    },
    async metaGroup() {
      if (h.monitorUrl === undefined) return undefined;
      const r = await fetch(`${h.monitorUrl}/jsz`, { signal: AbortSignal.timeout(h.timeoutMs) }).catch(() => undefined);
      const jsz = r?.ok === true ? ((await r.json().catch(() => undefined)) as Jsz | undefined) : undefined;
      const meta = jsz?.meta_cluster;
      if (meta?.leader === undefined || meta.leader === '') return undefined;
      // Only the leader's server lists the peers (a follower's /jsz has no replicas: not known whole). A
      // killed peer stays `current` there; its `active` (since last heard, ns) is what grows.
      const peers = meta.replicas ?? [];
      // Its reported size is not enough: the group grows as servers join it, and a test saw a group of
      // two (a third server not added yet) reported whole, its third server killed and never missed.
      const size = Math.max(meta.cluster_size ?? 0, h.replicas);
      const whole = peers.length + 1 >= size && peers.every((p) => heardWithin(p, META_PEER_ACTIVE_MAX_NS));
      return { leader: meta.leader, whole };
    },
    async stepDown(bucket) {
      const m = await h.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream(bucket)}`, new Uint8Array());
      const r = JSON.parse(new TextDecoder().decode(m.data)) as { success?: boolean; error?: { description?: string } };
      if (r.success !== true) throw new InvalidArgumentError(`leader stepdown of ${stream(bucket)}: ${r.error?.description ?? 'refused'}`);
    },
  };
}
