/**
 * A node process: one ActorSystem with a NodeManager, and a lease candidate that runs the scheduler
 * and realm manager while it holds leadership. Started by `sigma cluster` (or by hand on another
 * machine, pointed at the same NATS cluster). Binding to the real world is this file's job.
 */
import { Command } from 'commander';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createSystem } from '../actors/index.js';
import { leaseActor } from '../control/lease.js';
import { startLeader } from '../control/leader.js';
import { ProcTable } from '../control/proc-table.js';
import { BUCKET, SUBJECT, decodeJson, encode, type NodeRequest } from '../control/protocol.js';
import { natsTransport } from '../control/nats-transport.js';
import { connectBus } from '../nats/real.js';
import { ForkHostLauncher } from './host-process.js';
import { nodeManager, type NodeMsg } from './manager.js';

export const LEASE_TTL_MS = 3_000;
export const LEASE_RENEW_MS = 500;
export const NODE_HEARTBEAT_MS = 250;
export const NODE_TIMEOUT_MS = 2_000;

const opts = new Command()
  .requiredOption('--id <id>')
  .requiredOption('--nats <url>')
  .option('--mcpu <n>', 'capacity in millicores', '2000')
  .option('--mem-mb <n>', 'memory capacity', '4096')
  .option('--be-slots <n>', 'best-effort procs run at once', '64')
  .option('--data-dir <dir>', 'logs and state', '.sigma')
  .option('--programs <json>', 'program name -> module path', '{}')
  .parse()
  .opts<{ id: string; nats: string; mcpu: string; memMb: string; beSlots: string; dataDir: string; programs: string }>();

const log = pino({ level: process.env['SIGMA_LOG'] ?? 'info', name: opts.id }, pino.destination(2));
const programs = JSON.parse(opts.programs) as Record<string, string>;
const logDir = join(opts.dataDir, 'logs');
mkdirSync(logDir, { recursive: true });

const bus = await connectBus({ servers: [opts.nats], name: opts.id });
const [nodesKv, leaderKv, procsKv, realmsKv, namesKv] = await Promise.all([
  bus.kv(BUCKET.nodes, { ttlMs: 60_000 }),
  bus.kv(BUCKET.leader, { ttlMs: LEASE_TTL_MS }),
  bus.kv(BUCKET.procs),
  bus.kv(BUCKET.realms),
  bus.kv(BUCKET.names),
]);
const table = new ProcTable(procsKv);
const system = createSystem({ name: opts.id, logger: log, transport: natsTransport(bus) });

const nm = system.spawn(
  nodeManager(
    { id: opts.id, mcpu: Number(opts.mcpu), memMb: Number(opts.memMb), address: opts.id, beSlots: Number(opts.beSlots), heartbeatMs: NODE_HEARTBEAT_MS, hostPingMissesMax: 8 },
    {
      launcher: new ForkHostLauncher({ env: { SIGMA_NATS_URL: opts.nats } }),
      table,
      nodesKv,
      namesKv,
      publish: (ev) => bus.publish(SUBJECT.procEvent, encode(ev)),
      pull: async (slots) => {
        await bus.request(SUBJECT.pull, encode({ node: opts.id, freeMcpu: 0, freeMemMb: 0, max: slots }), { timeoutMs: 1_000 });
      },
      appendLog: (pid, _stream, data) => appendFileSync(join(logDir, `${pid}.log`), data),
    },
  ),
  { name: 'node' },
);

// Run and evict orders addressed to this node.
const orders = bus.subscribe(SUBJECT.node(opts.id));
void (async () => {
  for await (const m of orders) {
    const req = decodeJson(m.data) as NodeRequest | undefined;
    const reply = (error?: { type: string; message: string }) => void m.respond(encode(error === undefined ? { ok: true } : { ok: false, error }));
    let msg: NodeMsg | undefined;
    if (req?.op === 'run' && typeof req.order?.pid === 'string') msg = { type: 'run', order: req.order, reply };
    else if (req?.op === 'evict' && typeof req.pid === 'string') msg = { type: 'evict', pid: req.pid, graceMs: req.graceMs, reply };
    if (msg === undefined) reply({ type: 'bad-request', message: 'malformed node request' });
    else nm.tell(msg);
  }
})();

// Leadership changes are applied one after another, so a scheduler that is still starting when
// leadership is lost is stopped before any successor starts: never two schedulers in one process.
let leaderChain: Promise<void> = Promise.resolve();
let stopLeader: (() => Promise<void>) | undefined;
const leaderDeps = { bus, system, table, nodesKv, realmsKv, namesKv, programs, nodeTimeoutMs: NODE_TIMEOUT_MS, nodeRequestTimeoutMs: 2_000 };
system.spawn(
  leaseActor({
    kv: leaderKv,
    key: 'scheduler',
    holder: opts.id,
    ttlMs: LEASE_TTL_MS,
    renewEveryMs: LEASE_RENEW_MS,
    onElected: (term) => {
      log.info({ term }, 'elected scheduler leader');
      leaderChain = leaderChain.then(async () => {
        try {
          stopLeader = await startLeader(leaderDeps, term);
        } catch (e) {
          // Holding the lease without a scheduler would stall the cluster: leave, so it lapses.
          log.fatal({ err: e }, 'could not start the scheduler; exiting so that a standby takes over');
          process.exit(1);
        }
      });
    },
    onDeposed: (reason) => {
      log.warn({ reason }, 'no longer the scheduler leader');
      leaderChain = leaderChain.then(async () => {
        await stopLeader?.();
        stopLeader = undefined;
      });
    },
  }),
  { name: 'lease' },
);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  orders.unsubscribe();
  await system.shutdown();
  await bus.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.send?.({ t: 'node-ready', id: opts.id });
log.info({ nats: opts.nats }, 'node up');
