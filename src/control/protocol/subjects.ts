import * as m from './messages.js';
import { decodeAck, type Ack, type Decoder } from './wire.js';
import { nodeRecord, type NodeRecord } from './records.js';

/** A request/reply subject: the request a server decodes and the reply a caller decodes. */
export interface Rpc<Req, Rep> {
  readonly subject: string;
  readonly request: Decoder<Req>;
  readonly reply: Decoder<Rep>;
}

/** A publish-only subject: nobody answers, so losing a message must cost at most a read. */
export interface Topic<Msg> {
  readonly subject: string;
  readonly message: Decoder<Msg>;
}

/** Served by the leader's scheduler only. */
export const SPAWN: Rpc<m.SpawnRequest, m.SpawnReply> = { subject: 'sigma.sched.spawn', request: m.spawnRequest, reply: m.spawnReply };
/** Served by the scheduler, which forwards to the proc's node. */
export const EVICT: Rpc<m.EvictRequest, Ack> = { subject: 'sigma.sched.evict', request: m.evictRequest, reply: decodeAck };
/** From a node with spare capacity; the BE procs come back as run orders on the node's own subject. */
export const REALM_CREATE: Rpc<m.RealmRequest, Ack> = { subject: 'sigma.realm.create', request: m.realmRequest, reply: decodeAck };
export const REALM_REMOVE: Rpc<m.RealmRequest, Ack> = { subject: 'sigma.realm.remove', request: m.realmRequest, reply: decodeAck };
/** Sets a realm's quota (the request's `quota`, `{}` for none); procs already live stay. */
export const REALM_QUOTA: Rpc<m.RealmRequest, Ack> = { subject: 'sigma.realm.quota', request: m.realmRequest, reply: decodeAck };

/** A node reports a proc's start or exit to the scheduler (the KV record is the truth). */
export const PROC_EVENT: Topic<m.ProcEvent> = { subject: 'sigma.sched.event', message: m.procEvent };
/**
 * Each node's heartbeat, on core NATS as well as in `sigma_nodes`: liveness must not wait for
 * JetStream, whose streams and meta group stop for an election (4-9 s) when a server dies.
 */
export const NODE_BEAT: Topic<NodeRecord> = { subject: 'sigma.node.beat', message: nodeRecord };
/** Data-path endpoints that remote senders reached have closed (src/node/datapath/cross.ts). */
export const DP_GONE: Topic<m.DataPathGone> = { subject: 'sigma.dp.gone', message: m.dataPathGone };

/**
 * Per node: orders addressed to one node manager. The request is a NodeRequest; what comes back depends
 * on its op: an Ack for run, evict and realm-removed, a status or an answer for the data-path ops.
 */
export const NODE = {
  subject: (id: string): string => `sigma.node.${id}`,
  request: m.nodeRequest,
  ack: decodeAck,
  dataPathStatus: m.dataPathStatusReply,
  dataPathCall: m.dataPathCallReply,
} as const;

/** Per node: fire-and-forget notes from the scheduler (`created`, `cancel`); losing one costs a read. */
export const NODE_NOTE = { subject: (id: string): string => `sigma.node.${id}.note`, message: m.nodeRequest } as const;

/**
 * Actor frames for the system at `address` (the NATS Transport of the actor kernel decodes them). A
 * realm's actor systems (its hosts, and clients that talk to its services) are named `realm.<realm>.<id>`:
 * the realm's NATS user may reach those subjects and no others.
 */
export const ACTOR = {
  subject: (address: string): string => `sigma.actor.${address}`,
  realmSystem: (realm: string, id: string): string => `realm.${realm}.${id}`,
  realmSubjects: (realm: string): string => `sigma.actor.realm.${realm}.>`,
} as const;
