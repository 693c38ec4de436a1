import type { JetStreamManager } from '@nats-io/jetstream';
import { InvalidArgumentError } from './errors.js';
import { bounded, classify } from './real-common.js';
import type { Msg, StreamLeadership } from './types.js';

/** A replica heard from longer ago than this (ns, as stream info says) is not counted healthy. */
const REPLICA_ACTIVE_MAX_NS = 1_000_000_000;

/** What the nats.js binding (real.ts) lends its stream leadership. */
export interface LeadershipHost {
  serverName(): string | undefined;
  jsm(): Promise<JetStreamManager>;
  request(subject: string, data: Uint8Array): Promise<Msg>;
  timeoutMs: number;
  /** This machine's own server's HTTP monitoring (`http://host:8222`), where the meta leader is asked. */
  monitorUrl?: string;
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
      const healthy = (r: (typeof replicas)[number]): boolean => r.current && r.offline !== true && r.active <= REPLICA_ACTIVE_MAX_NS;
      return replicas.length > 0 && replicas.every(healthy) ? si.cluster?.leader : undefined;
    },
    async metaLeader() {
      if (h.monitorUrl === undefined) return undefined;
      const r = await fetch(`${h.monitorUrl}/jsz`, { signal: AbortSignal.timeout(h.timeoutMs) }).catch(() => undefined);
      const jsz = r?.ok === true ? ((await r.json().catch(() => undefined)) as { meta_cluster?: { leader?: string } } | undefined) : undefined;
      return jsz?.meta_cluster?.leader || undefined;
    },
    async stepDown(bucket) {
      const m = await h.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream(bucket)}`, new Uint8Array());
      const r = JSON.parse(new TextDecoder().decode(m.data)) as { success?: boolean; error?: { description?: string } };
      if (r.success !== true) throw new InvalidArgumentError(`leader stepdown of ${stream(bucket)}: ${r.error?.description ?? 'refused'}`);
    },
  };
}
