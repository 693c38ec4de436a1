/**
 * `npm run chaos -- <scenario|all> [--quick] [--seed S] [--json]`: sigma-ts on several machines made of
 * network namespaces, faults on real processes, and the invariants checked afterwards.
 *
 * Two processes: this one, in the root namespace, makes the lab (and removes it whatever happens:
 * normal end, failure, SIGINT, and a stale lab of a killed run at the next start), then runs itself
 * again inside the lab's client machine, so that everything it says to NATS crosses the lab's bridge.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { cleanStaleLabs, createLab, destroyLab, labUnavailable, type Lab } from './lab.js';
import { runScenario, SCENARIOS, type ScenarioRun } from './scenarios.js';
import { LAB_MACHINES, LEASE_TTL_S, NATS_SERVERS, type Topology } from './world.js';
import { percentile } from '../bench/harness.js';

const CLI = fileURLToPath(import.meta.url);
const INNER_ENV = 'SIGMA_CHAOS_LAB';

interface Options {
  quick?: boolean;
  seed: number;
  json?: boolean;
  keep?: boolean;
  colocated?: boolean;
}

const topologyOf = (o: Options): Topology => (o.colocated === true ? 'colocated' : 'dedicated');

const seedOption = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('a whole number');
  return n;
};

const program = new Command('chaos')
  .description('sigma-ts across network namespaces with faults on real processes (root)')
  .argument('<scenario>', `one of ${SCENARIOS.map((s) => s.name).join(', ')}, or all`)
  .option('--quick', 'short phases (about a minute per scenario)')
  .option('--seed <n>', 'the fault schedule comes from it', seedOption, 1)
  .option('--json', 'the last line printed is one JSON object')
  .option('--keep', 'keep the data directory (NATS stores, node logs) for a look afterwards')
  .option('--colocated', 'three machines, each a NATS server, a node and procs (default: three control-plane machines, a NATS server and a node without procs each, and three workers)')
  .action((name: string, o: Options) => (process.env[INNER_ENV] === undefined ? outer(name, o) : inner(name, o, JSON.parse(process.env[INNER_ENV]) as Lab)));

/** Root namespace: the lab around the inner run, and nothing of it left afterwards. */
async function outer(name: string, o: Options): Promise<void> {
  if (name !== 'all' && !SCENARIOS.some((s) => s.name === name)) usage(`unknown scenario "${name}"`);
  const why = labUnavailable();
  if (why !== undefined) {
    console.error(`chaos: ${why}; run as root on Linux with iproute2`);
    process.exit(2);
  }
  const stale = cleanStaleLabs();
  if (stale.length > 0) console.error(`chaos: removed ${stale.length} stale lab(s) of killed runs: ${stale.join(', ')}`);
  const lab = createLab(LAB_MACHINES[topologyOf(o)]);
  const cleanup = (): void => destroyLab(lab.tag);
  process.on('exit', cleanup); // synchronous: runs on every way out but SIGKILL (the next run cleans that)
  const client = lab.machines.find((m) => m.name === 'client')!;
  const child = spawn('ip', ['netns', 'exec', client.ns, process.execPath, CLI, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, [INNER_ENV]: JSON.stringify(lab) } });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((r) => child.once('exit', (c, sig) => r(c ?? (sig === null ? 1 : 130))));
  process.exit(code);
}

/** Inside the client machine: the scenarios in order, the figures, the verdict. */
async function inner(name: string, o: Options, lab: Lab): Promise<void> {
  const chosen = name === 'all' ? SCENARIOS : SCENARIOS.filter((s) => s.name === name);
  const dataDir = mkdtempSync(join(tmpdir(), `sigma-chaos-${lab.tag}-`));
  const say = (l: string): void => void (o.json === true ? process.stderr : process.stdout).write(`${l}\n`);
  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
    say('chaos: interrupted; stopping');
    process.exit(130); // the outer process removes the lab and everything in it
  });
  const runs: ScenarioRun[] = [];
  let failure: string | undefined;
  try {
    for (const s of chosen) {
      say(`${s.name}: ${s.what} (seed ${o.seed})`);
      const run = await runScenario(s, lab, { seed: o.seed, quick: o.quick === true, topology: topologyOf(o), dataDir, log: say });
      runs.push(run);
      say(summary(run));
      if (violations(run) > 0) say(`  repeat: ${repeat(s.name, o)}`);
    }
  } catch (e) {
    failure = (e as Error).stack ?? String(e);
    say(`chaos: the run failed: ${failure}\n  repeat: ${repeat(name, o)}`);
  } finally {
    if (o.keep === true) say(`data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
  const figures = totals(runs, LAB_MACHINES[topologyOf(o)].length - 1);
  if (o.json === true) console.log(JSON.stringify(figures));
  const bad = failure !== undefined || interrupted || runs.some((r) => violations(r) > 0);
  process.exit(bad ? 1 : 0);
}

const violations = (r: ScenarioRun): number =>
  r.verdict.lost.length + r.verdict.runTwice.length + r.verdict.ghosts.length + r.verdict.failedInFailover.length + (r.fault.servicesUnrecovered?.length ?? 0) + (r.fault.chain?.violations.length ?? 0) + r.leftovers.buffersLeaked.length + r.leftovers.removedRealm.length;
const repeat = (name: string, o: Options): string => `npm run chaos -- ${name} --seed ${o.seed}${o.quick === true ? ' --quick' : ''}${o.colocated === true ? ' --colocated' : ''}`;

function summary(r: ScenarioRun): string {
  const v = r.verdict;
  const failed = v.failed.length === 0 ? '' : ` (${[...new Set(v.failed.map((f) => f.failed))].join(', ')}; ${v.failedInFailover.length} while a scheduler accepted later ones)`;
  const list = (xs: string[]): string => (xs.length === 0 ? '0' : `${xs.length}: ${xs.slice(0, 5).join(' ')}${xs.length > 5 ? ' ...' : ''}`);
  const failover = r.fault.failoverS === undefined ? '' : `, failover ${r.fault.failoverS.toFixed(2)} s`;
  const services = r.fault.serviceRecoveryS === undefined ? '' : `, services back in ${r.fault.serviceRecoveryS.map((s) => s.toFixed(2)).join(' ')} s, never ${list(r.fault.servicesUnrecovered ?? [])}`;
  const c = r.fault.chain;
  const chain = c === undefined ? '' : `, chain ${c.calls} calls, ${Object.values(c.errors).reduce((a, n) => a + n, 0)} typed errors, back in ${c.recoveryS?.toFixed(2) ?? 'never'} s, chain violations ${list(c.violations)}`;
  const left = `, buffers not returned ${list(r.leftovers.buffersLeaked)}, removed realm leftovers ${list(r.leftovers.removedRealm)}`;
  return `  ${r.scenario}: ${v.accepted} accepted, lost ${list(v.lost)}, run twice ${list(v.runTwice)}, ghosts ${list(v.ghosts)}, failed ${v.failed.length}${failed}, not ok ${v.notOk}${failover}${services}${chain}${left} — ${violations(r) === 0 ? 'ok' : 'VIOLATED'}`;
}

/** The figures, keys as docs/chaos.md lists them. */
function totals(runs: ScenarioRun[], machines: number): Record<string, number | null> {
  const sum = (f: (r: ScenarioRun) => number): number => runs.reduce((a, r) => a + f(r), 0);
  const failover = runs.find((r) => r.fault.failoverS !== undefined)?.fault;
  const recoveries = runs.flatMap((r) => r.fault.serviceRecoveryS ?? []);
  const chains = runs.flatMap((r) => (r.fault.chain === undefined ? [] : [r.fault.chain]));
  const chainRecovery = chains.flatMap((c) => (c.recoveryS === undefined ? [] : [c.recoveryS]));
  return {
    spawns_accepted: sum((r) => r.verdict.accepted),
    procs_lost: sum((r) => r.verdict.lost.length),
    procs_run_twice: sum((r) => r.verdict.runTwice.length),
    ghost_runs: sum((r) => r.verdict.ghosts.length),
    spawns_failed_in_failover: sum((r) => r.verdict.failedInFailover.length),
    spawns_failed_no_leader: sum((r) => r.verdict.failed.length - r.verdict.failedInFailover.length),
    service_recovery_p99_s: recoveries.length === 0 ? null : percentile(recoveries, 99),
    service_lease_ttl_s: LEASE_TTL_S,
    nats_servers: NATS_SERVERS,
    machines,
    failover_s: failover?.failoverS ?? null,
    failover_history_procs: failover?.historyProcs ?? null,
    chain_calls: chains.length === 0 ? null : chains.reduce((a, c) => a + c.calls, 0),
    chain_errors: chains.length === 0 ? null : chains.reduce((a, c) => a + Object.values(c.errors).reduce((x, n) => x + n, 0), 0),
    chain_violations: chains.length === 0 ? null : chains.reduce((a, c) => a + c.violations.length, 0),
    chain_recovery_s: chainRecovery.length === 0 ? null : Math.max(...chainRecovery),
    buffers_leaked: sum((r) => r.leftovers.buffersLeaked.length),
    removed_realm_leftovers: sum((r) => r.leftovers.removedRealm.length),
  };
}

function usage(message: string): never {
  console.error(`chaos: ${message}\n${program.helpInformation()}`);
  process.exit(2);
}

await program.parseAsync();
