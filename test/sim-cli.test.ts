import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/sim/cli.js', import.meta.url));
const KEYS = ['scenarios', 'seeds_run', 'violations', 'deterministic', 'mutants', 'mutants_caught', 'sim_events_per_s'];

test('sim cli - all scenarios and every mutant, checked for determinism: one JSON object with exactly the issue keys, no violations, every mutant caught', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'all', '--seeds', '2', '--check-determinism', '--json'], { maxBuffer: 1 << 24 });
  const f = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  t.deepEqual(Object.keys(f), KEYS);
  t.true((f['scenarios'] as number) >= 6);
  t.is(f['seeds_run'], (f['scenarios'] as number) * 2);
  t.is(f['violations'], 0);
  t.is(f['deterministic'], true);
  t.true((f['mutants'] as number) >= 4);
  t.is(f['mutants_caught'], f['mutants']);
  t.true((f['sim_events_per_s'] as number) > 0);
});

test('sim cli - a caught mutant prints the replay commands and a shrunk schedule; its trace replays identically; --html renders the run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
  const html = join(dir, 'run.html');
  // Exit 0: the mutant was caught (that is what --mutate asks for).
  const { stderr } = await run(process.execPath, [CLI, 'spawn-storm', '--seeds', '2', '--mutate', 'exit-twice', '--html', html], { cwd: dir, maxBuffer: 1 << 24 });
  t.regex(stderr, /VIOLATION spawn-storm seed 1 \(mutant exit-twice\).*\[terminal-once\]/);
  t.regex(stderr, /replay: npm run sim -- spawn-storm --seed 1 --mutate exit-twice/);
  t.regex(stderr, /shrunk: \d+ -> \d+ fault\(s\)/);
  const trace = /npm run sim -- replay (\S+-exit-twice\.jsonl)/.exec(stderr)![1]!;
  t.true(existsSync(join(dir, trace)));
  const page = readFileSync(html, 'utf8');
  t.regex(page, /<svg/);
  t.regex(page, /terminal-once/);
  const { stdout } = await run(process.execPath, [CLI, 'replay', trace], { cwd: dir });
  t.regex(stdout, /identical, \d+ events/);
});

test('sim cli - bad input exits 2 naming what is known: scenario, mutant, trace file', async (t) => {
  const e1 = (await t.throwsAsync(run(process.execPath, [CLI, 'nope']))) as { code?: number; stderr?: string };
  t.is(e1.code, 2);
  t.regex(String(e1.stderr), /known: .*spawn-storm/);
  const e2 = (await t.throwsAsync(run(process.execPath, [CLI, 'spawn-storm', '--mutate', 'nope']))) as { code?: number; stderr?: string };
  t.is(e2.code, 2);
  t.regex(String(e2.stderr), /known: .*exit-twice/);
  const e3 = (await t.throwsAsync(run(process.execPath, [CLI, 'replay', '/nonexistent/trace.jsonl']))) as { code?: number; stderr?: string };
  t.is(e3.code, 2);
  t.regex(String(e3.stderr), /trace \/nonexistent\/trace\.jsonl/);
});
