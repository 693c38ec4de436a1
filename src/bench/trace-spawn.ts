#!/usr/bin/env node
/**
 * Where a spawn's time goes: `node dist/src/bench/trace-spawn.js [--count N] [--json]`. Runs itself again with
 * SIGMA_SPAWN_TRACE=1 (src/spawn-trace.ts) and its stderr piped; that child starts a two-node cluster as
 * the spawn suite does, warms both nodes' realm hosts, then spawns in turn a never-loaded program of
 * cluster.config.ts (`cold`, as the suite's cold_start_p50_ms: its bundle fetched ahead by the node) and
 * a freshly deployed ~100 KB program (`deployed`, fetched from the object store on its first spawn). Every process stamps its stages on one monotonic clock; this prints the
 * median time from the client's send to each stage and between consecutive stages (with --json, one
 * object on stdout: kind -> stage -> median ms from the send).
 */
import { fork } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SigmaClient, untilScheduler } from '../client/client.js';
import { startCluster } from '../cluster/launcher.js';
import { defineCluster } from '../config/cluster.js';
import { connectBus } from '../nats/real.js';
import { deploy } from '../programs/client.js';
import { SPAWN_TRACE_ENV, SPAWN_TRACE_FLUSH_MS, SPAWN_TRACE_PREFIX } from '../spawn-trace.js';
import { median, round } from './harness.js';
import { deployedProgram } from './suites/spawn-deployed.js';

const PROC_TYPES = fileURLToPath(new URL('../proc/types.js', import.meta.url));
const COUNT_DEFAULT = 20;
const WARM_SPAWNS = 32;
const EXIT_TIMEOUT_MS = 30_000;

/** The stages of one spawn, in the order they happen (a stage a spawn does not pass is skipped). */
const STAGES = ['client.send', 'sched.nats-recv', 'sched.recv', 'sched.resolved', 'sched.placed', 'sched.order-sent', 'node.run-recv', 'node.fetch-start', 'store.chunk', 'store.info', 'store.got', 'cache.fetched', 'cache.written', 'node.program-ready', 'node.to-host', 'host.recv', 'host.loaded', 'first-line'];
/** Off the way to the first line, reported apart: the record's create, the client's reply. */
const ASIDE = ['sched.created', 'client.reply'];

interface Spawned {
  kind: 'cold' | 'deployed';
  pid: string;
  first: string;
}

const stampProgram = `import { FunctionProc } from ${JSON.stringify(PROC_TYPES)};
export default class Stamp extends FunctionProc { run() { return process.hrtime.bigint().toString(); } }
`;

/** The child: a cluster, traced spawns; each spawn's pid and first-line stamp go to the parent over IPC. */
async function child(count: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-trace-'));
  chmodSync(dir, 0o711);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  const programs: Record<string, string> = { stamp: join(dir, 'stamp.js') };
  for (let i = 0; i < count; i++) programs[`cold-${i}`] = join(dir, `cold-${i}.js`);
  for (const f of Object.values(programs)) writeFileSync(f, stampProgram);
  process.env['SIGMA_LOG'] ??= 'warn';
  const config = defineCluster({ nodes: 2, node: { beSlots: 4096 }, nats: { embedded: true, port: 0 }, dataDir: join(dir, 'data'), realms: ['default'], programs });
  const cluster = await startCluster(config);
  const bus = await connectBus({ servers: [cluster.natsUrl], name: 'trace' });
  const client = await SigmaClient.connect(bus);
  try {
    await untilScheduler(() => client.createRealm('default'), { attempts: 102 });
    const run = async (program: string): Promise<{ pid: string; first: string }> => {
      const pid = await client.spawn({ program });
      const st = await client.waitExit(pid, { timeoutMs: EXIT_TIMEOUT_MS });
      if (st.kind !== 'ok' || typeof st.data !== 'string') throw new Error(`${program} (${pid}) ended ${st.kind}: ${st.message}`);
      return { pid, first: st.data };
    };
    for (let i = 0; i < WARM_SPAWNS; i++) await Promise.all([run('stamp'), run('stamp')]);
    for (let i = 0; i < count; i++) {
      process.send!({ kind: 'cold', ...(await run(`cold-${i}`)) } satisfies Spawned);
      const file = join(dir, `deployed-${i}.ts`);
      writeFileSync(file, deployedProgram(PROC_TYPES, i));
      await deploy(bus, file, { name: `deployed-${i}`, realm: 'default' });
      process.send!({ kind: 'deployed', ...(await run(`deployed-${i}`)) } satisfies Spawned);
    }
    // Every process holds its stamps up to SPAWN_TRACE_FLUSH_MS, and hosts are killed at the stop.
    await new Promise((r) => setTimeout(r, 3 * SPAWN_TRACE_FLUSH_MS));
  } finally {
    await bus.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * stage -> ns, per pid: a stage's first stamp after the client's send (a bundle's stages are stamped by
 * hash, joined through node.fetch-start; the deploy's own existence check stamps it earlier).
 */
function collate(lines: string[], spawned: Spawned[]): Map<string, Map<string, bigint>> {
  const byId = new Map<string, { stage: string; ns: bigint }[]>();
  const hashOf = new Map<string, string>();
  for (const l of lines) {
    const [ns, stage, id, id2] = l.slice(SPAWN_TRACE_PREFIX.length).split(' ');
    if (ns === undefined || stage === undefined || id === undefined) continue;
    if (stage === 'node.fetch-start' && id2 !== undefined) hashOf.set(id, id2);
    const stamps = byId.get(id) ?? [];
    stamps.push({ stage, ns: BigInt(ns) });
    byId.set(id, stamps);
  }
  const out = new Map<string, Map<string, bigint>>();
  for (const s of spawned) {
    const hash = hashOf.get(s.pid);
    const all = [...(byId.get(s.pid) ?? []), ...((hash === undefined ? undefined : byId.get(hash)) ?? [])].sort((a, b) => (a.ns < b.ns ? -1 : 1));
    const sent = all.find((x) => x.stage === 'client.send')?.ns ?? 0n;
    const m = new Map<string, bigint>();
    for (const x of all) if (x.ns >= sent && !m.has(x.stage)) m.set(x.stage, x.ns);
    m.set('first-line', BigInt(s.first));
    out.set(s.pid, m);
  }
  return out;
}

/** kind -> stage -> median ms from the client's send, over the spawns that passed the stage. */
function medians(spawns: Map<string, bigint>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stage of [...STAGES, ...ASIDE]) {
    const have = spawns.filter((m) => m.has(stage) && m.has('client.send'));
    if (have.length > 0) out[stage] = round(median(have.map((m) => Number(m.get(stage)! - m.get('client.send')!) / 1e6)), 3);
  }
  return out;
}

function table(kind: string, spawns: Map<string, bigint>[]): string {
  const rows: string[] = [`${kind} (${spawns.length} spawns): median ms from client.send | median ms from the previous stage`];
  let prev: string | undefined;
  for (const stage of [...STAGES, ...ASIDE]) {
    const have = spawns.filter((m) => m.has(stage) && m.has('client.send'));
    if (have.length === 0) continue;
    const fromSend = median(have.map((m) => Number(m.get(stage)! - m.get('client.send')!) / 1e6));
    const aside = ASIDE.includes(stage);
    const step = aside || prev === undefined ? undefined : median(have.filter((m) => m.has(prev!)).map((m) => Number(m.get(stage)! - m.get(prev!)!) / 1e6));
    rows.push(`  ${stage.padEnd(20)} ${round(fromSend, 3).toFixed(3).padStart(8)} | ${step === undefined ? '' : round(step, 3).toFixed(3).padStart(8)}${aside ? '  (aside)' : ''}`);
    if (!aside) prev = stage;
  }
  return rows.join('\n');
}

async function parent(count: number, json: boolean): Promise<void> {
  const cp = fork(fileURLToPath(import.meta.url), ['--count', String(count)], { env: { ...process.env, [SPAWN_TRACE_ENV]: '1' }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const lines: string[] = [];
  const spawned: Spawned[] = [];
  cp.on('message', (m) => spawned.push(m as Spawned));
  createInterface({ input: cp.stderr! }).on('line', (l) => (l.startsWith(SPAWN_TRACE_PREFIX) ? lines.push(l) : process.stderr.write(`${l}\n`)));
  // 'close', not 'exit': the child's last stderr lines may still be in the pipe when it exits.
  const code = await new Promise<number | null>((r) => cp.once('close', r));
  if (code !== 0) throw new Error(`the traced run exited ${code}`);
  const by = collate(lines, spawned);
  const of = (kind: Spawned['kind']): Map<string, bigint>[] => spawned.filter((s) => s.kind === kind).map((s) => by.get(s.pid)!);
  if (json) process.stdout.write(`${JSON.stringify({ cold: medians(of('cold')), deployed: medians(of('deployed')) })}\n`);
  else for (const kind of ['cold', 'deployed'] as const) process.stdout.write(`${table(kind, of(kind))}\n`);
}

const i = process.argv.indexOf('--count');
const count = i < 0 ? COUNT_DEFAULT : Number(process.argv[i + 1]);
if (!Number.isInteger(count) || count < 1) throw new Error('--count takes a whole number of spawns of each kind');
if (process.env[SPAWN_TRACE_ENV] === '1') await child(count).then(() => process.exit(0));
else await parent(count, process.argv.includes('--json'));
