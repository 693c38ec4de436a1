/**
 * A proc host (σcontainer) process: forked pre-warmed by a node manager, bound to one realm, runs
 * that realm's procs as actors. It talks to its node manager over the fork IPC channel only.
 * Binding to the real world (real clock and timers) is this file's job.
 */
import { pino } from 'pino';
import { createSystem } from '../actors/index.js';
import { natsTransport } from '../control/nats-transport.js';
import { connectBus } from '../nats/real.js';
import { ACTOR, REALM_JOURNAL, type NameRecord } from '../control/protocol/index.js';
import { KvJournal } from '../actors/kv-journal.js';
import type { Bus } from '../nats/types.js';
import { realTimers } from '../ports/real.js';
import { attachDataPath } from './datapath/attach.js';
import { refusalError } from '../datapath/refusal.js';
import type { HostDataPath } from './datapath/host-datapath.js';
import { decodeToHost, type ToNode } from './protocol.js';
import { ProcRunner, currentProc } from './runner.js';
import { traceSpawn } from '../spawn-trace.js';

const hostId = process.env['SIGMA_HOST_ID'] ?? `host-${process.pid}`;
/** Lookup sequence numbers wrap here (the IPC decoder takes 31 bits). */
const LOOKUP_SEQ_MOD = 0x7fff_ffff;
const NATS_CONNECT_ATTEMPTS_MAX = 16;
const NATS_CONNECT_RETRY_MS = 250;
const LOOKUP_TIMEOUT_MS = 5_000;
const realm = process.env['SIGMA_REALM'] ?? 'default';

if (process.send === undefined) {
  process.stderr.write('sigma host: must be started by a node manager (no IPC channel)\n');
  process.exit(2);
}

// The node manager is gone: nobody can report our procs' exits, so leave (its successor reaps).
// Registered before anything is awaited, so a parent that dies while we start is never missed.
process.on('disconnect', () => process.exit(0));
// Profiling (SIGMA_HOST_NODE_FLAGS, src/node/host-process.ts): a profile is written on exit, never on a
// signal's default death, so SIGTERM becomes an exit.
if (process.execArgv.some((f) => f.startsWith('--cpu-prof'))) process.on('SIGTERM', () => process.exit(0));

const send = (m: ToNode): void => {
  if (process.connected) process.send!(m);
};

// Listened for before the first await: the node sends the URL right after the fork.
const natsUrl = process.env['SIGMA_NATS'] === 'ipc' ? firstNatsUrl() : Promise.resolve(process.env['SIGMA_NATS_URL']);
delete process.env['SIGMA_NATS_URL'];

// Output written while a proc's code runs belongs to that proc: route it to the node manager,
// which keeps one log per proc (`sigma logs <pid>`).
for (const stream of ['stdout', 'stderr'] as const) {
  const original = process[stream].write.bind(process[stream]);
  process[stream].write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const store = currentProc.getStore();
    if (store === undefined) return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    send({ t: 'log', pid: store.pid, stream, data: typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8') });
    return true;
  }) as typeof process.stdout.write;
}

const log = pino({ level: process.env['SIGMA_LOG'] ?? 'warn', name: hostId }, pino.destination(2));
// With NATS, service procs are actors any process of the realm can reach by path; without, the host
// still runs functions (tests of the host alone).
const url = await natsUrl;
const bus = url === undefined ? undefined : await connectWithRetry(url);
if (!process.connected) process.exit(0); // the parent left while we were connecting
let runner: ProcRunner | undefined;
const system = createSystem({
  // In the realm's part of the actor namespace: its NATS user reaches nothing else.
  name: ACTOR.realmSystem(realm, hostId),
  logger: log,
  ...(bus === undefined ? {} : { transport: natsTransport(bus) }),
  onEvent: (e) => {
    if (e.type === 'failed') runner?.noteFailure(e.path, e.error);
  },
});
runner = new ProcRunner(system, send, log);
// Bound, not created: the realm's user may not create buckets (its journal is made with the realm).
const journalKv = await bus?.kv(REALM_JOURNAL.bucket(realm), { bind: true });
if (journalKv !== undefined) runner.journal = new KvJournal(journalKv, journalKv);
// Service names come from the node, which answers only what this realm may see.
const lookups = new Map<number, (r: NameRecord | undefined) => void>();
let lookupSeq = 0;
const lookup = (key: string): Promise<NameRecord | undefined> =>
  new Promise((resolve) => {
    lookupSeq = (lookupSeq + 1) % LOOKUP_SEQ_MOD;
    const seq = lookupSeq;
    // A node that never answers (gone, or busy past reason) means "no such service", not a hang.
    const timer = setTimeout(() => lookups.get(seq)?.(undefined), LOOKUP_TIMEOUT_MS);
    lookups.set(seq, (r) => {
      clearTimeout(timer);
      lookups.delete(seq);
      resolve(r);
    });
    send({ t: 'lookup', seq, key });
  });
let datapath: HostDataPath | undefined;
/** The counters last reported, as sent: unchanged ones are not sent again. */
let lastStats: string | undefined;

process.on('message', (raw) => {
  const m = decodeToHost(raw);
  if (m === undefined) {
    log.warn({ raw }, 'ignored a malformed message from the node manager');
    return;
  }
  switch (m.t) {
    case 'run':
      traceSpawn('host.recv', m.pid);
      void runner!.run(m.pid, m.modulePath, m.args, m.realm, m.endpoint);
      return;
    case 'evict':
      runner!.evict(m.pid);
      return;
    case 'ping': {
      // Counters first (when they moved): a node waiting on a status takes the pong as "reported".
      const stats = datapath?.stats();
      const text = stats === undefined ? undefined : JSON.stringify(stats);
      if (stats !== undefined && text !== lastStats) send({ t: 'dp-stats', stats });
      lastStats = text;
      send({ t: 'pong', seq: m.seq });
      return;
    }
    case 'dp-attach': {
      const r = attachDataPath(m, { realm, timers: realTimers, lookup, log });
      if (r._tag === 'Left') log.error({ err: r.left }, 'data path: cannot attach; procs here run without it');
      else runner!.datapath = datapath = r.right;
      return;
    }
    case 'dp-gone': {
      const node = m.node;
      for (const endpoint of m.endpoints) datapath?.gone(endpoint, node === undefined ? undefined : refusalError({ type: m.why ?? 'peer-gone', node, endpoint, detail: '' }));
      return;
    }
    case 'dp-refused':
      datapath?.refused(m.endpoint, m.seq, refusalError(m.error));
      return;
    case 'looked-up':
      lookups.get(m.seq)?.(m.record);
      return;
    case 'nats':
      return; // taken by firstNatsUrl
    case 'exit':
      void system
        .shutdown()
        .then(() => bus?.close())
        .then(() => process.exit(0));
  }
});

process.on('uncaughtException', (e) => log.error({ err: e }, 'uncaught exception in a proc host'));
process.on('unhandledRejection', (e) => log.error({ err: e }, 'unhandled rejection in a proc host'));

send({ t: 'ready', hostId, address: system.name });
void realm;

function firstNatsUrl(): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (raw: unknown): void => {
      const m = decodeToHost(raw);
      if (m?.t !== 'nats') return;
      process.off('message', onMessage);
      resolve(m.url);
    };
    process.on('message', onMessage);
  });
}

/**
 * A realm created a moment ago may not have its NATS user yet (the server reloads its users when
 * realms change): an authorization failure is retried until the node's ready timeout is near.
 */
async function connectWithRetry(server: string): Promise<Bus> {
  for (let attempt = 1; ; attempt++) {
    try {
      // JetStream answers the journal's requests on the realm's inboxes, the only ones its user may hear.
      return await connectBus({ servers: [server], name: hostId, inboxPrefix: REALM_JOURNAL.inboxPrefix(realm) });
    } catch (e) {
      if (attempt >= NATS_CONNECT_ATTEMPTS_MAX) throw e;
      log.warn({ err: e, attempt }, 'cannot connect to NATS yet; retrying');
      await new Promise((r) => setTimeout(r, NATS_CONNECT_RETRY_MS));
    }
  }
}
