import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { EXIT } from '../src/cli/format.js';
import { isolationStatus } from '../src/node/sandbox/probe.js';
import { testCluster, type TestCluster } from './helpers/cluster.js';

// The sigma CLI as a user runs it, against a real cluster: every documented exit code, and random
// argument vectors that must each end with one of them — never a hang, never a dead node.
const CLI = fileURLToPath(new URL('../src/cli/sigma.js', import.meta.url));
/** Bound on one CLI run: past it the run counts as a hang. */
const RUN_TIMEOUT_MS = 30_000;

let tc: TestCluster;
test.before(async () => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 2000, memMb: 4096, beSlots: 8 } }, ['default']);
});
test.after.always(async () => tc?.stop());

const sigma = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; hung: boolean }> =>
  new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, '--nats', tc.cluster.natsUrl, ...args], { timeout: RUN_TIMEOUT_MS, encoding: 'utf8' }, (e, stdout, stderr) => {
      resolve({ code: child.exitCode, stdout, stderr, hung: (e as { killed?: boolean } | null)?.killed === true });
    });
  });

test.serial('cli - every documented exit code, each from an input that should produce it', async (t) => {
  const cases: Array<[string[], number, RegExp?]> = [
    [['spawn', 'hello', 'cli', '--wait'], EXIT.ok, /ok: "hello cli"/],
    [['spawn', 'fail', 'boom', '--wait'], EXIT.procFailed, /error/],
    [['bogus-cmd'], EXIT.usage],
    [['spawn', 'hello', '--lc', '--mcpu', 'abc'], EXIT.usage],
    [['spawn', 'hello', '--lc', '--mem', 'x'], EXIT.usage],
    [['evict', 'p-1', '--grace-ms', 'abc'], EXIT.usage],
    [['call', 'echo', 'hi', '--timeout-ms', 'abc'], EXIT.usage],
    [['spawn', 'constructor', '--wait'], EXIT.refused, /no program "constructor"/],
    [['spawn', '__proto__', '--wait'], EXIT.refused],
    [['spawn', 'toString'], EXIT.refused],
    [['spawn', 'hello', '--realm', 'nowhere'], EXIT.refused, /realm "nowhere" does not exist/],
    [['spawn', 'counter', '--name', 'dotted.'], EXIT.refused, /may not end with/],
    [['spawn', 'sleep', '5000', '--wait', '--wait-ms', '300'], EXIT.timeout, /did not exit within 300 ms/],
    [['realm', 'create', 'capped', '--procs', '1'], EXIT.ok, /realm capped created/],
    [['realm', 'ls'], EXIT.ok, /capped\s+procs=1/],
    [['spawn', 'counter', '--realm', 'capped'], EXIT.ok],
    [['spawn', 'counter', '--realm', 'capped'], EXIT.refused, /quota of 1 live procs \(procs\)/],
    [['realm', 'quota', 'capped', '--procs', '-3'], EXIT.usage],
    [['realm', 'quota', 'nowhere', '--procs', '3'], EXIT.refused, /realm "nowhere" does not exist/],
    [['realm', 'quota', 'capped'], EXIT.ok, /quota -/],
    [['spawn', 'counter', '--realm', 'capped'], EXIT.ok],
    [['nodes'], EXIT.ok, isolationStatus().sandboxed ? /\bPROCS\b[\s\S]*\byes\b[\s\S]*\bsandboxed\b/ : /\bPROCS\b[\s\S]*\byes\b[\s\S]*NOT sandboxed/],
    [['datapath'], EXIT.ok, isolationStatus().sandboxed ? /hosts sandboxed/ : /hosts NOT sandboxed/],
  ];
  for (const [args, code, message] of cases) {
    const r = await sigma(args);
    t.is(r.code, code, `sigma ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    if (message !== undefined) t.regex(r.stdout + r.stderr, message, args.join(' '));
  }
  const gone = await new Promise<number | null>((resolve) => {
    const child = execFile(process.execPath, [CLI, '--nats', 'nats://127.0.0.1:1', 'nodes'], { timeout: RUN_TIMEOUT_MS }, () => resolve(child.exitCode));
  });
  t.is(gone, EXIT.unavailable, 'no cluster at that address');
});

test.serial('cli - random argument vectors get a documented exit code, never a hang, and the nodes live on', async (t) => {
  const word = fc.oneof(fc.constantFrom('hello', 'fail', 'sleep', 'counter', 'constructor', '__proto__', 'default', 'nowhere', '-1', '0', '1e9', 'NaN', '', '.', 'a.b.', 'x'.repeat(300)), fc.string({ maxLength: 12 }));
  const option = fc.oneof(
    fc.tuple(fc.constantFrom('--mcpu', '--mem', '--grace-ms', '--timeout-ms', '--wait-ms', '--realm', '--name', '--export', '--restart'), word).map(([o, v]) => [o, v]),
    fc.constantFrom(['--lc'], ['--wait'], ['--dedicated'], ['--json'], ['--all'], ['--bogus']),
  );
  const argv = fc.tuple(fc.constantFrom('spawn', 'evict', 'ps', 'names', 'nodes', 'call', 'realm', 'datapath', 'logs', 'route', 'bogus'), fc.array(word, { maxLength: 3 }), fc.array(option, { maxLength: 4 })).map(([cmd, args, opts]) => {
    const v = [cmd, ...args, ...opts.flat()];
    // --wait on a sleep would wait its whole length: keep every run short.
    return v.includes('--wait') ? [...v, '--wait-ms', '2000'] : v;
  });
  const documented: number[] = Object.values(EXIT);
  await fc.assert(
    fc.asyncProperty(argv, async (args) => {
      const r = await sigma(args);
      if (r.hung) throw new Error(`sigma ${JSON.stringify(args)} hung`);
      if (!documented.includes(r.code ?? -1)) throw new Error(`sigma ${JSON.stringify(args)} exited ${r.code}: ${r.stderr}`);
    }),
    { numRuns: 40 },
  );
  t.is(tc.cluster.nodes.get('node-1')?.exitCode, null, 'the node process is alive');
  const r = await sigma(['spawn', 'hello', 'still', '--wait']);
  t.is(r.code, EXIT.ok, r.stderr);
});
