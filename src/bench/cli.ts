#!/usr/bin/env node
/** `npm run bench -- <suite> [--quick] [--json]`: with --json the last line printed is one JSON object. */
import { Command } from 'commander';
import { makeContext, type Suite } from './harness.js';
import { actorsSuite } from './suites/actors.js';
import { spawnSuite } from './suites/spawn.js';

const SUITES: Suite[] = [actorsSuite, spawnSuite];

const program = new Command('bench')
  .argument('<suite>', `one of: ${SUITES.map((s) => s.name).join(', ')}`)
  .option('--quick', 'a short run (under a minute)')
  .option('--json', 'print the figures as one JSON object on the last line')
  .action(async (name: string, o: { quick?: boolean; json?: boolean }) => {
    const suite = SUITES.find((s) => s.name === name);
    if (suite === undefined) {
      console.error(`bench: unknown suite "${name}"; known suites: ${SUITES.map((s) => s.name).join(', ')}`);
      process.exit(2);
    }
    const ctx = makeContext(o.quick === true, process.stderr.isTTY === true && o.json !== true);
    ctx.log(`bench ${suite.name}: ${suite.description}${o.quick === true ? ' (quick)' : ''}`);
    const figures = await suite.run(ctx);
    if (o.json === true) {
      console.log(JSON.stringify(figures));
    } else {
      const width = Math.max(...Object.keys(figures).map((k) => k.length));
      for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(width)}  ${String(v)}`);
    }
    process.exit(0);
  });

await program.parseAsync();
