/**
 * A proc host (σcontainer) process: forked pre-warmed by a node manager, bound to one realm, runs
 * that realm's procs as actors. It talks to its node manager over the fork IPC channel only.
 * Binding to the real world (real clock and timers) is this file's job.
 */
import { pino } from 'pino';
import { createSystem } from '../actors/index.js';
import { natsTransport } from '../control/nats-transport.js';
import { connectBus } from '../nats/real.js';
import { BUCKET, decodeNameRecord, HOST_INBOX_PREFIX, type NameRecord } from '../control/protocol/index.js';
import { realTimers } from '../ports/real.js';
import { attachDataPath } from './datapath/attach.js';
import { refusalError } from '../datapath/refusal.js';
import type { HostDataPath } from './datapath/host-datapath.js';
import { decodeToHost, type ToNode } from './protocol.js';
import { ProcRunner, currentProc } from './runner.js';

const hostId = process.env['SIGMA_HOST_ID'] ?? `host-${process.pid}`;
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
// With NATS, service procs are actors any process can reach by path; without, the host still runs
// functions (tests of the host alone).
const natsUrl = process.env['SIGMA_NATS_URL'];
// Replies come under an inbox prefix of the hosts' own: their NATS user may not subscribe to `_INBOX.>`,
// where every other client's replies (proc-table reads among them) would be visible.
const bus = natsUrl === undefined ? undefined : await connectBus({ servers: [natsUrl], name: hostId, inboxPrefix: HOST_INBOX_PREFIX });
if (!process.connected) process.exit(0); // the parent left while we were connecting
let runner: ProcRunner | undefined;
const system = createSystem({
  name: hostId,
  logger: log,
  ...(bus === undefined ? {} : { transport: natsTransport(bus) }),
  onEvent: (e) => {
    if (e.type === 'failed') runner?.noteFailure(e.path, e.error);
  },
});
runner = new ProcRunner(system, send, log);
// Bound, not created: a host's NATS user may read the names bucket and nothing more.
const namesKv = bus === undefined ? undefined : await bus.kv(BUCKET.names, { bind: true });
const lookup = async (key: string): Promise<NameRecord | undefined> => {
  const e = await namesKv?.get(key);
  return e?.value == null ? undefined : decodeNameRecord(e.value);
};
let datapath: HostDataPath | undefined;

process.on('message', (raw) => {
  const m = decodeToHost(raw);
  if (m === undefined) {
    log.warn({ raw }, 'ignored a malformed message from the node manager');
    return;
  }
  switch (m.t) {
    case 'run':
      void runner!.run(m.pid, m.modulePath, m.args, m.realm, m.endpoint);
      return;
    case 'evict':
      runner!.evict(m.pid);
      return;
    case 'ping':
      send({ t: 'pong', seq: m.seq });
      if (datapath !== undefined) send({ t: 'dp-stats', stats: datapath.stats() });
      return;
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
