#!/usr/bin/env node
/**
 * `npm run sim -- <scenario|all> [--seeds N | --seed S] [--check-determinism] [--mutate <name|all>]
 * [--html <file>] [--json]` and `npm run sim -- replay <trace.jsonl>`. Every run is a fresh cluster on
 * virtual time with a trace and its hash; a failing seed has its trace written, its fault schedule
 * shrunk, and the one command that replays it printed. With --json the last line is one JSON object.
 * (Measuring wall time for events per second is this CLI's job: it is not actor code.)
 */
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkSchedule, type Fault } from './faults.js';
import { renderHtml } from './html.js';
import { catches, isMutant, MUTANT_NAMES, MUTANT_SEED_BUDGET, MUTANTS, type MutantName } from './mutants.js';
import { runScenario, type RunOptions } from './run.js';
import { measureScale, SCALE_NODES_DEFAULT, SCALE_PROCS_PER_NODE_DEFAULT } from './scale.js';
import type { RunResult, Scenario } from './scenario.js';
import { shrink } from './shrink.js';
import { readTrace, writeTrace, type TraceHeader } from './trace.js';

const DIR = fileURLToPath(new URL('../../simulations/', import.meta.url));
/** Where failing runs' traces go. */
export const TRACE_DIR = '.sim/traces';

async function scenarios(): Promise<Scenario[]> {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.js')).sort();
  const mods = await Promise.all(files.map(async (f) => (await import(pathToFileURL(DIR + f).href)) as { default?: Partial<Scenario> }));
  return mods.flatMap((m) => (m.default !== undefined && typeof m.default.workload === 'function' ? [m.default as Scenario] : []));
}

const headerOf = (r: RunResult): TraceHeader => ({ scenario: r.scenario, seed: r.seed, mutant: r.mutant, faults: r.faults });
const traceFile = (r: RunResult, suffix = ''): string => `${TRACE_DIR}/${r.scenario}-${r.seed}${r.mutant === null ? '' : `-${r.mutant}`}${suffix}.jsonl`;
const replayCmd = (r: RunResult): string => `npm run sim -- ${r.scenario} --seed ${r.seed}${r.mutant === null ? '' : ` --mutate ${r.mutant}`}`;

/** Writes the failing run's trace, shrinks its schedule, and says how to replay both. */
async function report(s: Scenario, r: RunResult, o: { shrink: boolean; quiet: boolean }): Promise<void> {
  writeTrace(traceFile(r), headerOf(r), r.trace, r.hash);
  const first = r.violations[0];
  const say = (m: string): void => void (o.quiet ? undefined : console.error(m));
  say(`VIOLATION ${s.name} seed ${r.seed}${r.mutant === null ? '' : ` (mutant ${r.mutant})`}: ${r.violationCount} violation(s); first at ${first?.atMs.toFixed(0)} ms [${first?.invariant}] ${first?.message}`);
  say(`  replay: ${replayCmd(r)}    (trace: npm run sim -- replay ${traceFile(r)})`);
  if (!o.shrink || r.faults.length === 0) return;
  const opts = (faults: RunOptions['faults']): RunOptions => ({ ...(r.mutant === null ? {} : { mutant: r.mutant as MutantName }), ...(faults === undefined ? {} : { faults }) });
  const sh = await shrink(r.faults, async (f) => (await runScenario(s, r.seed, opts(f))).violationCount > 0);
  const small = await runScenario(s, r.seed, opts(sh.faults));
  writeTrace(traceFile(r, '-shrunk'), headerOf(small), small.trace, small.hash);
  say(`  shrunk: ${r.faults.length} -> ${sh.faults.length} fault(s) in ${sh.runs} runs${sh.minimal ? '' : ' (run budget spent; not minimal)'}: ${JSON.stringify(sh.faults)}`);
  say(`  replay shrunk: npm run sim -- replay ${traceFile(r, '-shrunk')}`);
}

/**
 * Runs interleaved in one process. Each world has its own virtual time and PRNG and no state is shared,
 * so results do not depend on it. It buys fewer event-loop turns per simulated event but costs more
 * CPU in GC and cache misses (measured: 4.1 s user at 1 against 5.3-5.9 s at 4), so 1 is the default.
 */
export const CONCURRENCY_DEFAULT = 1;
export const CONCURRENCY_MAX = 64;
/** Largest cluster `scale` simulates in one process. */
export const SCALE_NODES_MAX = 5_000;
/** Failing runs whose traces stay in memory for shrinking and pictures; later ones are written and dropped. */
export const FAILED_RUNS_KEPT_MAX = 20;

/** Runs `tasks` at most `k` at a time; results in task order. */
async function inPool<T>(tasks: Array<() => Promise<T>>, k: number): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(k, tasks.length) }, worker));
  return out;
}

const program = new Command('sim');

program
  .command('replay <trace>')
  .description('run a recorded trace again and compare it event for event')
  .option('--html <file>', 'write the replayed run as an HTML timeline')
  .action(async (file: string, o: { html?: string }) => {
    let trace: ReturnType<typeof readTrace>;
    try {
      trace = readTrace(file);
    } catch (e) {
      console.error(`sim replay: ${(e as Error).message}`);
      process.exit(2);
    }
    const { header, lines } = trace;
    const s = (await scenarios()).find((x) => x.name === header.scenario);
    if (s === undefined) {
      console.error(`sim replay: the trace names scenario "${header.scenario}", which does not exist here`);
      process.exit(2);
    }
    if (header.mutant !== null && !isMutant(header.mutant)) {
      console.error(`sim replay: unknown mutant "${header.mutant}"; known: ${MUTANT_NAMES.join(', ')}`);
      process.exit(2);
    }
    let faults: Fault[];
    try {
      faults = checkSchedule(header.faults, Array.from({ length: s.nodes ?? 3 }, (_, i) => `node-${i + 1}`));
    } catch (e) {
      console.error(`sim replay: ${file}: ${(e as Error).message}`);
      process.exit(2);
    }
    const r = await runScenario(s, header.seed, { faults, expected: lines, ...(header.mutant === null ? {} : { mutant: header.mutant as MutantName }) });
    if (o.html !== undefined) writeFileSync(o.html, renderHtml({ ...headerOf(r), hash: r.hash }, r.trace.lines));
    const d = r.trace.divergence;
    if (d === undefined && r.hash === header.hash) {
      console.log(`replayed ${file}: identical, ${r.trace.count} events, hash ${r.hash.slice(0, 16)}, ${r.violationCount} violation(s)`);
      process.exit(0);
    }
    console.log(`replayed ${file}: DIVERGED at event ${d?.line ?? '?'}\n  recorded: ${d?.expected ?? '(end of trace)'}\n  replayed: ${d?.got ?? '(end of run)'}`);
    process.exit(1);
  });

program
  .command('scale')
  .description('one scheduler against 10, 100 and 1,000 simulated node managers: its CPU per placement and its heap')
  .option('--nodes <list>', 'cluster sizes, comma separated', (v) => v.split(',').map(Number), [...SCALE_NODES_DEFAULT])
  .option('--procs-per-node <n>', 'procs spawned per node', (v) => Number(v), SCALE_PROCS_PER_NODE_DEFAULT)
  .option('--json', 'one JSON object on the last line')
  .action(async (o: { nodes: number[]; procsPerNode: number; json?: boolean }) => {
    if (!o.nodes.every((n) => Number.isInteger(n) && n > 0 && n <= SCALE_NODES_MAX) || !(Number.isInteger(o.procsPerNode) && o.procsPerNode > 0)) {
      console.error(`sim scale: --nodes takes sizes 1..${SCALE_NODES_MAX}, --procs-per-node a positive integer`);
      process.exit(2);
    }
    const rows = [];
    for (const n of o.nodes) {
      const f = await measureScale(n, n * o.procsPerNode);
      rows.push(f);
      if (o.json !== true) console.log(Object.entries(f).map(([k, v]) => `${k}=${v}`).join(' '));
    }
    if (o.json === true) console.log(JSON.stringify({ scale: rows }));
    process.exit(0);
  });

program
  .argument('[scenario]', 'a scenario name, or all')
  .option('--seeds <n>', 'run seeds 1..n', (v) => Number(v), 10)
  .option('--seed <s>', 'run this one seed (replay)', (v) => Number(v))
  .option('--check-determinism', 'run every seed twice and compare trace hashes')
  .option('--mutate <name>', `switch on a deliberate bug (${MUTANT_NAMES.join(', ')}, or all)`)
  .option('--html <file>', 'write the (first failing, else first) run as an HTML timeline')
  .option('--no-shrink', 'do not shrink failing fault schedules')
  .option('--concurrency <k>', 'runs interleaved in this process (each on its own virtual time; results do not depend on it)', (v) => Number(v), CONCURRENCY_DEFAULT)
  .option('--hashes <file>', 'write "scenario seed sha256" a line per run of the real code (to compare two versions of the code)')
  .option('--json', 'one JSON object on the last line')
  .action(async (name: string | undefined, o: { seeds: number; seed?: number; checkDeterminism?: boolean; mutate?: string; html?: string; shrink: boolean; concurrency: number; hashes?: string; json?: boolean }) => {
    const all = await scenarios();
    if (name === undefined) {
      console.error(`sim: name a scenario (${all.map((s) => s.name).join(', ')}) or all; or: replay <trace>`);
      process.exit(2);
    }
    const chosen = name === 'all' ? all : all.filter((s) => s.name === name);
    if (chosen.length === 0) {
      console.error(`sim: no scenario "${name}"; known: ${all.map((s) => s.name).join(', ')}, all`);
      process.exit(2);
    }
    if (!(Number.isInteger(o.seeds) && o.seeds > 0) || (o.seed !== undefined && !Number.isInteger(o.seed)) || !(Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= CONCURRENCY_MAX)) {
      console.error(`sim: --seeds takes a positive integer, --seed an integer, --concurrency 1..${CONCURRENCY_MAX}`);
      process.exit(2);
    }
    if (o.mutate !== undefined && o.mutate !== 'all' && !isMutant(o.mutate)) {
      console.error(`sim: no mutant "${o.mutate}"; known: ${MUTANT_NAMES.join(', ')}, all`);
      process.exit(2);
    }
    const seeds = o.seed !== undefined ? [o.seed] : Array.from({ length: o.seeds }, (_, i) => i + 1);
    // A named mutant runs instead of the real code; `all` (scenario or --mutate) also runs every mutant.
    const only = o.mutate !== undefined && o.mutate !== 'all' ? (o.mutate as MutantName) : undefined;
    const mutants: MutantName[] = only !== undefined ? [only] : name === 'all' || o.mutate === 'all' ? MUTANT_NAMES : [];
    const realRuns = only === undefined ? chosen.length * seeds.length * (o.checkDeterminism === true ? 2 : 1) : 0;
    const quiet = o.json === true;
    // The bar goes to stderr, so it shows on a terminal with --json too (stdout keeps the JSON line).
    const bar = process.stderr.isTTY === true ? new cliProgress.SingleBar({ stream: process.stderr, format: 'sim [{bar}] {value}/{total} runs {what}' }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(realRuns + mutants.length * (o.seed !== undefined ? 1 : Math.max(o.seeds, MUTANT_SEED_BUDGET)), 0, { what: '' });
    let violations = 0;
    let nondeterministic = 0;
    let events = 0;
    let seedsRun = 0;
    let pictured: RunResult | undefined;
    const t0 = performance.now();
    const k = o.concurrency;
    // A rejection nobody handles kills a real node process: during a run of the real code it counts as
    // a violation (named with the runs under way) instead of ending the sweep.
    const current = new Set<string>();
    let unhandled = 0;
    process.on('unhandledRejection', (e: unknown) => {
      const during = [...current];
      if (during.length > 0) unhandled++;
      console.error(`UNHANDLED REJECTION during ${during.join(', ') || 'a mutant run'}: ${(e as Error)?.message ?? String(e)}${during.length === 1 ? `\n  replay: npm run sim -- ${during[0]!.replace(' seed ', ' --seed ')}` : ''}`);
    });
    if (only === undefined) {
      const jobs = chosen.flatMap((s) => seeds.map((seed) => ({ s, seed })));
      const twice = o.checkDeterminism === true;
      // Runs keep their trace only while needed: a sweep of 10,000 seeds must not hold 10,000 traces.
      let kept = 0;
      const results = await inPool(jobs.map((j, i) => async () => {
        const id = `${j.s.name} seed ${j.seed}`;
        current.add(id);
        const r = await runScenario(j.s, j.seed);
        bar?.increment(1, { what: j.s.name });
        const again = twice ? await runScenario(j.s, j.seed) : undefined;
        current.delete(id);
        if (again !== undefined) bar?.increment(1, { what: j.s.name });
        const keep = i === 0 || (r.violationCount > 0 && kept++ < FAILED_RUNS_KEPT_MAX);
        if (r.violationCount > 0 && !keep) {
          writeTrace(traceFile(r), headerOf(r), r.trace, r.hash);
          console.error(`VIOLATION ${j.s.name} seed ${j.seed}: ${r.violationCount} violation(s) [${r.violations[0]?.invariant}] ${r.violations[0]?.message}\n  replay: ${replayCmd(r)}`);
        }
        return { run: keep ? r : undefined, hash: r.hash, events: r.events + (again?.events ?? 0), violationCount: r.violationCount, againHash: again?.hash };
      }), k);
      if (o.hashes !== undefined) writeFileSync(o.hashes, jobs.map((j, i) => `${j.s.name} ${j.seed} ${results[i]!.hash}\n`).join(''));
      const shrunk = new Set<string>();
      for (let i = 0; i < jobs.length; i++) {
        const { s, seed } = jobs[i]!;
        const x = results[i]!;
        events += x.events;
        seedsRun++;
        violations += x.violationCount;
        if (x.againHash !== undefined && x.againHash !== x.hash) {
          nondeterministic++;
          console.error(`NONDETERMINISTIC ${s.name} seed ${seed}: ${x.hash.slice(0, 12)} != ${x.againHash.slice(0, 12)}\n  replay: npm run sim -- ${s.name} --seed ${seed}`);
        }
        const r = x.run;
        if (r === undefined) continue;
        if (pictured === undefined || (pictured.violationCount === 0 && r.violationCount > 0)) pictured = r;
        if (r.violationCount > 0) {
          // One shrink per scenario: later failures are usually the same bug.
          await report(s, r, { shrink: o.shrink && !shrunk.has(s.name), quiet: false });
          shrunk.add(s.name);
        }
      }
    }
    // Mutants: each runs its own scenario (or the one named) over the seed budget until caught, k seeds at a time.
    let caught = 0;
    for (const m of mutants) {
      const targets = name === 'all' ? all.filter((s) => s.name === MUTANTS[m].scenario) : chosen;
      let got: RunResult | undefined;
      const budget = o.seed !== undefined ? [o.seed] : Array.from({ length: Math.max(o.seeds, MUTANT_SEED_BUDGET) }, (_, i) => i + 1);
      const tries = targets.flatMap((s) => budget.map((seed) => ({ s, seed })));
      for (let i = 0; i < tries.length && got === undefined; i += k) {
        const batch = await inPool(tries.slice(i, i + k).map((j) => async () => {
          const r = await runScenario(j.s, j.seed, { mutant: m });
          bar?.increment(1, { what: `mutant ${m}` });
          return r;
        }), k);
        for (const r of batch) events += r.events;
        // Caught only by the invariant the mutant breaks; a run where only others fired is noted, not counted.
        got = batch.find((r) => catches(m, r));
        for (const r of batch) if (got === undefined && r.violationCount > 0 && !quiet) console.error(`mutant ${m}: ${r.scenario} seed ${r.seed} broke ${r.invariantsViolated.join(', ')}, not ${MUTANTS[m].invariant}; not counted`);
      }
      if (got !== undefined) {
        caught++;
        if (only !== undefined) {
          pictured = got;
          await report(targets.find((s) => s.name === got.scenario)!, got, { shrink: o.shrink, quiet });
        } else if (!quiet) {
          const v = got.violations.find((x) => x.invariant === MUTANTS[m].invariant);
          console.error(`mutant ${m} caught by ${MUTANTS[m].invariant}: ${got.scenario} seed ${got.seed}${v === undefined ? '' : ` ${v.message}`}`);
        }
      } else console.error(`MUTANT NOT CAUGHT ${m} (${MUTANTS[m].what}) by ${MUTANTS[m].invariant} in ${tries.length} runs of ${targets.map((s) => s.name).join(', ')}`);
    }
    bar?.stop();
    if (o.html !== undefined && pictured !== undefined) {
      writeFileSync(o.html, renderHtml({ ...headerOf(pictured), hash: pictured.hash }, pictured.trace.lines));
      if (!quiet) console.error(`timeline of ${pictured.scenario} seed ${pictured.seed}: ${o.html}`);
    }
    if (o.seed !== undefined && pictured !== undefined && pictured.violationCount === 0) writeTrace(traceFile(pictured), headerOf(pictured), pictured.trace, pictured.hash);
    violations += unhandled;
    const seconds = (performance.now() - t0) / 1000;
    const figures = {
      scenarios: chosen.length,
      seeds_run: seedsRun,
      violations,
      deterministic: o.checkDeterminism === true ? nondeterministic === 0 : null,
      mutants: mutants.length,
      mutants_caught: caught,
      sim_events_per_s: Math.round(events / seconds),
    };
    if (o.json === true) console.log(JSON.stringify(figures));
    else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(18)} ${String(v)}`);
    const ok = only !== undefined ? caught === 1 : violations === 0 && nondeterministic === 0 && caught === mutants.length;
    process.exit(ok ? 0 : 1);
  });

await program.parseAsync();
