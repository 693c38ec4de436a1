import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchError, percentile, type Suite } from '../src/bench/harness.js';
import { suiteNames } from '../src/bench/registry.js';
import { formatTable, withRatios } from '../src/bench/report.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/bench/cli.js', import.meta.url));

const ACTORS_KEYS = [
  'tell_msgs_per_s',
  'ask_p50_us',
  'ask_p99_us',
  'spawn_actors_per_s',
  'mailbox_peak_mb_flood',
  'mailbox_capacity_flood',
  'mailbox_peak_messages_flood',
  'nact_tell_msgs_per_s',
  'nact_ask_p50_us',
  'nact_ask_p99_us',
  'nact_spawn_actors_per_s',
  'tell_vs_nact',
  'ask_p50_vs_nact',
  'mailbox_peak_mb_flood_unbounded',
  'nact_mailbox_peak_mb_flood',
  'flood_unbounded_heap_vs_nact',
  'flood_send_ms_unbounded',
  'nact_flood_send_ms',
];

test('bench - percentile is nearest-rank over unsorted values and leaves its input alone', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
  t.is(percentile(xs, 50), 50);
  t.is(percentile(xs, 99), 99);
  t.is(percentile(xs, 100), 100);
  t.is(percentile(xs, 0), 1);
  t.is(xs[0], 100);
  t.is(percentile([7], 99), 7);
  t.is(percentile([3, 1, 2], 50), 2);
  t.is(percentile([1, 2, 3, 4], 50), 2);
  t.is(percentile([10, 9, 1000], 99), 1000);
  t.true(Number.isNaN(percentile([], 50)));
});

test('bench - percentile rejects p outside [0, 100] with a typed error', (t) => {
  for (const p of [-1, 101, Number.NaN]) {
    const e = t.throws(() => percentile([1, 2], p), { instanceOf: BenchError });
    t.regex(e!.message, /\[0, 100\]/);
  }
});

test('bench - ratios are oriented so that above 1 means we are better', (t) => {
  const suite: Suite = {
    name: 'x',
    description: 'x',
    comparisons: [
      { figure: 'rate', baseline: 'base_rate', better: 'higher', ratio: 'rate_vs' },
      { figure: 'lat', baseline: 'base_lat', better: 'lower', ratio: 'lat_vs' },
    ],
    goals: [{ figure: 'rate_vs', op: '>=', target: 3 }],
    run: async () => ({}),
  };
  const f = withRatios(suite, { rate: 10, base_rate: 5, lat: 2, base_lat: 1 });
  t.is(f['rate_vs'], 2);
  t.is(f['lat_vs'], 0.5);
  const table = formatTable(suite, f);
  t.regex(table, /rate .*2x better.*rate_vs >= 3 +MISSED/);
  t.regex(table, /lat .*0\.5x worse/);
});

test('bench - actors --quick --json ends with one JSON object holding every required figure', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'actors', '--quick', '--json'], { maxBuffer: 1 << 24 });
  const last = stdout.trimEnd().split('\n').at(-1)!;
  const figures = JSON.parse(last) as Record<string, unknown>;
  t.true(figures !== null && typeof figures === 'object' && !Array.isArray(figures));
  for (const key of ACTORS_KEYS) {
    t.true(typeof figures[key] === 'number' && Number.isFinite(figures[key]), `${key} = ${String(figures[key])}`);
  }
  // Bounded by construction, whatever the machine: the mailbox never held more than its capacity.
  t.true((figures['mailbox_peak_messages_flood'] as number) <= (figures['mailbox_capacity_flood'] as number));
});

test.serial('bench - spawn --quick --json: cold starts on the leader\'s node and on another, the pool baselines (import() and require()) and fork, on one clock', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'spawn', '--quick', '--json'], { maxBuffer: 1 << 24 });
  const figures = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  for (const key of ['cold_start_p50_ms', 'cold_start_remote_p50_ms', 'pool_p50_ms', 'pool_require_p50_ms', 'fork_p50_ms', 'warm_start_p50_ms', 'cold_start_vs_pool_p50_ratio', 'cold_start_vs_pool_require_p50_ratio', 'cold_start_remote_vs_pool_p50_ratio', 'cold_start_vs_fork_p50_ratio']) {
    // Stamps on one monotonic clock: a start can never come out at or below zero.
    t.true(typeof figures[key] === 'number' && (figures[key] as number) > 0, `${key} = ${String(figures[key])}`);
  }
  // The run fails if a remote spawn ran on the leader's node; this says where the others ran.
  const share = figures['cold_start_on_leader_share'] as number;
  t.true(share >= 0 && share <= 1, `cold_start_on_leader_share = ${share}`);
});

test('bench - an unknown suite exits with 2 and names every known suite', async (t) => {
  const e = (await t.throwsAsync(run(process.execPath, [CLI, 'no-such-suite']))) as Error & { code?: number; stderr?: string };
  t.is(e.code, 2);
  t.regex(String(e.stderr), /unknown suite "no-such-suite"/);
  t.true(suiteNames().includes('actors'));
  for (const name of suiteNames()) t.true(String(e.stderr).includes(name), `stderr names ${name}`);
});

// Serial: two data-path benchmarks at once on a 2-core machine would each take twice as long.
test.serial('bench - datapath --quick --json: every transport and size reported with its CPU per round trip, the baselines\' ratios, every forged descriptor refused before a receiver, the pool back to empty', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'datapath', '--quick', '--json'], { maxBuffer: 1 << 24 });
  const figures = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  const isNumber = (key: string): boolean => typeof figures[key] === 'number' && Number.isFinite(figures[key]);
  t.true(figures['mode'] === 'bpf' || figures['mode'] === 'userspace', `mode = ${String(figures['mode'])}`);
  const bpf = figures['mode'] === 'bpf';
  const transports = ['userspace', 'remote', 'tcp', 'tcpspin', 'http', 'nats', ...(bpf ? ['bpf', 'bpfevent'] : [])];
  for (const tr of transports) {
    for (const size of ['64', '4k', '64k', '1m']) {
      for (const f of ['rtt_p50_us', 'rtt_p99_us', 'msgs_per_s']) {
        const key = `${tr}_${size}_${f}`;
        t.true(isNumber(key) && (figures[key] as number) > 0, `${key} = ${String(figures[key])}`);
      }
    }
    t.true(isNumber(`${tr}_cpu_us_per_msg`), `${tr}_cpu_us_per_msg`);
    // Over the latency phase, every process of the transport counted: never nothing.
    t.true(isNumber(`${tr}_cpu_us_per_rtt`) && (figures[`${tr}_cpu_us_per_rtt`] as number) > 0, `${tr}_cpu_us_per_rtt = ${String(figures[`${tr}_cpu_us_per_rtt`])}`);
  }
  if (bpf) {
    for (const size of ['64', '4k', '64k', '1m']) {
      for (const key of [`bpf_vs_http_${size}_p50_ratio`, `bpf_vs_tcpspin_${size}_p50_ratio`, `bpfevent_vs_http_${size}_p50_ratio`]) t.true(isNumber(key), key);
    }
    // The tail: bpf's p99 beside http's, and where the slow round trips came from.
    for (const key of ['bpf_64_rtt_p99_us', 'http_64_rtt_p99_us', 'bpf_vs_http_64_p99_ratio', 'bpf_64_tail_rtts', 'bpf_64_tail_slow', 'bpf_64_tail_slow_gc', 'bpf_64_tail_slow_run_queue', 'bpf_64_tail_slow_batch_start', 'bpf_64_tail_slow_node', 'bpf_64_tail_slow_other']) t.true(isNumber(key), key);
    const parts = ['gc', 'run_queue', 'batch_start', 'node', 'other'].reduce((n, k) => n + (figures[`bpf_64_tail_slow_${k}`] as number), 0);
    t.is(parts, figures['bpf_64_tail_slow'] as number, 'each slow round trip is put down to exactly one cause');
  }
  // The run itself fails otherwise (crossRealmFailure); here its verdict as published.
  t.true((figures['cross_realm_attempts'] as number) > 0, 'the forger really sent');
  t.is(figures['cross_realm_rejected'], figures['cross_realm_attempts'], 'every forged descriptor refused by the kernel, hub or channel');
  t.is(figures['cross_realm_receiver_rejects'], 0, 'no receiver had to refuse one itself');
  t.is(figures['cross_realm_delivered'], 0, 'no forged descriptor reached the other realm');
  t.is(figures['pool_bytes_leaked'], 0);
});

test.serial('bench - datapath without privileges falls back to the userspace hub: mode "userspace", bpf figures null with the reason', async (t) => {
  // As root (CI), drop to nobody for this run; otherwise this process is already unprivileged.
  const argv = [CLI, 'datapath', '--quick', '--json'];
  const { stdout } =
    process.getuid?.() === 0
      ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, ...argv], { maxBuffer: 1 << 24 })
      : await run(process.execPath, argv, { maxBuffer: 1 << 24 });
  const figures = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  t.is(figures['mode'], 'userspace');
  t.is(figures['bpf_64_rtt_p50_us'], null);
  t.is(figures['bpfevent_64_rtt_p50_us'], null);
  t.regex(String(figures['bpf_unavailable_reason']), /root|CAP_BPF|EPERM/);
  t.true(typeof figures['userspace_64_rtt_p50_us'] === 'number');
  t.is(figures['cross_realm_delivered'], 0);
});

test('bench - datapath: the cross-realm check passes only when every forged descriptor was refused before any receiver', async (t) => {
  const { crossRealmFailure } = await import('../src/bench/suites/datapath.js');
  t.is(crossRealmFailure({ attempts: 100, rejected: 100, receiver: 0, delivered: 0 }), undefined);
  t.regex(crossRealmFailure({ attempts: 100, rejected: 99, receiver: 1, delivered: 0 })!, /99 refused .* 1 refused only by a receiver/, 'a receiver caught one: the verdict let it through');
  t.regex(crossRealmFailure({ attempts: 100, rejected: 100, receiver: 0, delivered: 1 })!, /1 delivered/);
  t.regex(crossRealmFailure({ attempts: 100, rejected: 101, receiver: 0, delivered: 0 })!, /cross-realm check failed/, 'refusals that were not the forger\'s are not counted as its');
  t.regex(crossRealmFailure({ attempts: 0, rejected: 0, receiver: 0, delivered: 0 })!, /none was sent/);
});

test.serial('bench - apps --quick --json: every key of the issue for both apps and both deployments, and no errors', async (t) => {
  t.timeout(600_000);
  const { stdout } = await run(process.execPath, [CLI, 'apps', '--quick', '--json'], { maxBuffer: 1 << 26 });
  const figures = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  for (const app of ['boutique', 'hotel']) {
    for (const d of ['sigma', 'http']) {
      for (const k of ['rps', 'p50_ms', 'p95_ms', 'p99_ms', 'cpu_cores', 'cpu_us_per_req']) t.true(typeof figures[`${app}_${d}_${k}`] === 'number' && (figures[`${app}_${d}_${k}`] as number) > 0, `${app}_${d}_${k} = ${String(figures[`${app}_${d}_${k}`])}`);
      t.is(figures[`${app}_${d}_errors`], 0, `${app}_${d}_errors`);
    }
    t.true(typeof figures[`${app}_idle_cpu_pct`] === 'number', `${app}_idle_cpu_pct`);
    for (const r of ['rps', 'p95', 'cpu_per_req']) t.true(typeof figures[`${app}_${r}_vs_http`] === 'number', `${app}_${r}_vs_http`);
  }
});

test('bench - the spawn trace stamps every stage of a cold and a deployed spawn on one clock; a deployed bundle is read by its chunk in one round trip', async (t) => {
  const TRACE = fileURLToPath(new URL('../src/bench/trace-spawn.js', import.meta.url));
  const { stdout } = await run(process.execPath, [TRACE, '--count', '2', '--json'], { timeout: 120_000, maxBuffer: 16 * 2 ** 20 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<'cold' | 'deployed', Record<string, number>>;
  for (const kind of ['cold', 'deployed'] as const) {
    for (const stage of ['sched.nats-recv', 'sched.placed', 'node.run-recv', 'cache.written', 'node.to-host', 'host.recv', 'host.loaded', 'first-line', 'sched.created']) t.true(r[kind][stage]! > 0, `${kind}: ${stage}`);
    t.true(r[kind]['first-line']! >= r[kind]['host.recv']!, kind);
    t.true(r[kind]['host.recv']! >= r[kind]['node.to-host']!, kind);
  }
  t.true(r.deployed['store.chunk']! > 0);
  t.is(r.deployed['store.info'], undefined); // the info read is the fallback only
});
