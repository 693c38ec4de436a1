import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/sim/cli.js', import.meta.url));

test('sim cli - all scenarios, checked for determinism, end with one JSON object and no violations', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'all', '--seeds', '2', '--check-determinism', '--json'], { maxBuffer: 1 << 24 });
  const f = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  t.true((f['scenarios'] as number) >= 3);
  t.is(f['seeds_run'], (f['scenarios'] as number) * 2);
  t.is(f['violations'], 0);
  t.is(f['deterministic'], true);
  t.true(Number.isFinite(f['sim_events_per_s']));
});

test('sim cli - an unknown scenario exits 2 naming the known ones', async (t) => {
  const e = await t.throwsAsync(run(process.execPath, [CLI, 'nope']));
  t.is((e as { code?: number }).code, 2);
  t.regex(String((e as { stderr?: string }).stderr), /known: .*spawn-storm/);
});
