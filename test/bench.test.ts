import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { percentile } from '../src/bench/harness.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/bench/cli.js', import.meta.url));

test('bench - percentile picks ranks, not averages', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
  t.is(percentile(xs, 50), 50);
  t.is(percentile(xs, 99), 99);
  t.is(percentile(xs, 100), 100);
  t.is(percentile([7], 99), 7);
  t.true(Number.isNaN(percentile([], 50)));
});

test('bench - actors --quick --json ends with one JSON object holding every figure the issue names', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'actors', '--quick', '--json'], { maxBuffer: 1 << 24 });
  const last = stdout.trim().split('\n').at(-1)!;
  const figures = JSON.parse(last) as Record<string, unknown>;
  for (const key of ['tell_msgs_per_s', 'ask_p50_us', 'ask_p99_us', 'spawn_actors_per_s', 'mailbox_peak_mb_flood', 'nact_tell_msgs_per_s', 'nact_ask_p50_us']) {
    t.true(typeof figures[key] === 'number' && Number.isFinite(figures[key]), `${key} = ${String(figures[key])}`);
  }
  // The flood is bounded by construction, whatever the machine: the mailbox never held more than its capacity.
  t.true((figures['mailbox_peak_messages_flood'] as number) <= (figures['mailbox_capacity_flood'] as number));
});

test('bench - an unknown suite exits non-zero and names the known ones', async (t) => {
  const e = await t.throwsAsync(run(process.execPath, [CLI, 'nope']));
  t.regex(String((e as { stderr?: string }).stderr), /known suites: actors, spawn/);
});
