#!/usr/bin/env node
/**
 * `npm run sim -- <scenario|all> [--seeds N | --seed S] [--check-determinism] [--json]`. Every run is a
 * fresh cluster on virtual time; a failing seed prints the one command that replays it. With --json
 * the last line is one JSON object. (Measuring wall time for events per second is this CLI's job.)
 */
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RunResult, Scenario } from './scenario.js';
import { runScenario } from './run.js';

const DIR = fileURLToPath(new URL('../../simulations/', import.meta.url));

async function scenarios(): Promise<Scenario[]> {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.js')).sort();
  return Promise.all(files.map(async (f) => ((await import(pathToFileURL(DIR + f).href)) as { default: Scenario }).default));
}

const program = new Command('sim')
  .argument('<scenario>', 'a scenario name, or all')
  .option('--seeds <n>', 'run seeds 1..n', (v) => Number(v), 10)
  .option('--seed <s>', 'run this one seed (replay)', (v) => Number(v))
  .option('--check-determinism', 'run every seed twice and compare trace hashes')
  .option('--json', 'one JSON object on the last line')
  .action(async (name: string, o: { seeds: number; seed?: number; checkDeterminism?: boolean; json?: boolean }) => {
    const all = await scenarios();
    const chosen = name === 'all' ? all : all.filter((s) => s.name === name);
    if (chosen.length === 0) {
      console.error(`sim: no scenario "${name}"; known: ${all.map((s) => s.name).join(', ')}, all`);
      process.exit(2);
    }
    const seeds = o.seed !== undefined ? [o.seed] : Array.from({ length: o.seeds }, (_, i) => i + 1);
    const runs = chosen.length * seeds.length * (o.checkDeterminism === true ? 2 : 1);
    const bar = process.stderr.isTTY === true && o.json !== true ? new cliProgress.SingleBar({ stream: process.stderr, format: 'sim [{bar}] {value}/{total} runs' }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(runs, 0);
    const failures: RunResult[] = [];
    let nondeterministic = 0;
    let events = 0;
    let seedsRun = 0;
    const t0 = performance.now();
    for (const s of chosen) {
      for (const seed of seeds) {
        const r = await runScenario(s, seed);
        events += r.events;
        seedsRun++;
        bar?.increment();
        if (o.checkDeterminism === true) {
          const again = await runScenario(s, seed);
          events += again.events;
          bar?.increment();
          if (again.hash !== r.hash) {
            nondeterministic++;
            console.error(`NONDETERMINISTIC ${s.name} seed ${seed}: ${r.hash.slice(0, 12)} != ${again.hash.slice(0, 12)}`);
          }
        }
        if (r.violations.length > 0) {
          failures.push(r);
          console.error(`VIOLATION ${s.name} seed ${seed}: ${r.violations.slice(0, 3).join('; ')}\n  replay: npm run sim -- ${s.name} --seed ${seed}`);
        }
      }
    }
    bar?.stop();
    const seconds = (performance.now() - t0) / 1000;
    const figures = {
      scenarios: chosen.length,
      seeds_run: seedsRun,
      violations: failures.reduce((a, r) => a + r.violations.length, 0),
      deterministic: o.checkDeterminism === true ? nondeterministic === 0 : null,
      mutants: 0,
      mutants_caught: 0,
      sim_events_per_s: Math.round(events / seconds),
    };
    if (o.json === true) console.log(JSON.stringify(figures));
    else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(18)} ${String(v)}`);
    process.exit(failures.length > 0 || nondeterministic > 0 ? 1 : 0);
  });

await program.parseAsync();
