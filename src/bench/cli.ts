#!/usr/bin/env node
/**
 * `npm run bench -- <suite> [--quick] [--json]`. With --json the last line on stdout is exactly one JSON
 * object with the suite's figures; progress, logs and anything a suite prints go to stderr.
 */
import { Command } from 'commander';
import { makeContext, wantsProgress } from './harness.js';
import { findSuite, suiteNames } from './registry.js';
import { formatTable, withRatios } from './report.js';

const EXIT_UNKNOWN_SUITE = 2;

/** Runs `fn` with process.stdout writes sent to stderr, so nothing a suite prints can follow the JSON. */
async function stdoutToStderr<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

const exitAfter = (text: string, code: number): void => {
  // Exit explicitly (a suite may leave handles open), but only once stdout has taken the text.
  process.stdout.write(text, () => process.exit(code));
};

const program = new Command('bench')
  .description('Benchmarks of sigma-ts against baselines measured in the same run.')
  .argument('<suite>', `one of: ${suiteNames().join(', ')}`)
  .option('--quick', 'a short run (under a minute per suite)')
  .option('--json', 'print the figures as one JSON object on the last line of stdout')
  .action(async (name: string, o: { quick?: boolean; json?: boolean }) => {
    const entry = findSuite(name);
    if (entry === undefined) {
      process.stderr.write(`bench: unknown suite "${name}". Known suites: ${suiteNames().join(', ')}. Try: npm run bench -- ${suiteNames()[0]} --quick\n`);
      process.exit(EXIT_UNKNOWN_SUITE);
    }
    const suite = await entry.load();
    const quick = o.quick === true;
    const ctx = makeContext(quick, wantsProgress());
    ctx.log(`bench ${suite.name}: ${suite.description}${quick ? ' (quick)' : ''}`);
    const t0 = performance.now();
    let figures;
    try {
      figures = withRatios(suite, o.json === true ? await stdoutToStderr(() => suite.run(ctx)) : await suite.run(ctx));
    } catch (e) {
      process.stderr.write(`bench ${suite.name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    }
    ctx.log(`bench ${suite.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    exitAfter(o.json === true ? `${JSON.stringify(figures)}\n` : `${formatTable(suite, figures)}\n`, 0);
  });

await program.parseAsync();
