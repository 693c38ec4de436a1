import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../src/cli/format.js';
import { writeContext } from '../src/cluster/context.js';
import { isolationStatus } from '../src/node/sandbox/probe.js';
import { hashOf, PROGRAM_BYTES_MAX } from '../src/programs/bundle.js';
import { programStore } from '../src/programs/client.js';
import { CHUNK_TOKEN } from '../src/nats/types.js';
import { startService, testCluster, waitFor, type TestCluster } from './helpers/cluster.js';

// Programs as users write and ship them: an application outside this repository that depends on the
// package (node_modules/sigma-ts is a link to it, as `npm install <path>` makes), the CLI found through
// a context file from another directory, `sigma new`, `sigma deploy`, versions, and realms kept apart.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'sigma.js');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const RUN_TIMEOUT_MS = 60_000;
/** A program of the cluster's config: deployed at start like any other, for every realm. */
const HELLO_FIXTURE = fileURLToPath(new URL('./fixtures/procs/hello.js', import.meta.url));

let tc: TestCluster;
let app: string;
let context: string;
test.before(async () => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 2000, memMb: 4096, beSlots: 8 }, programs: { 'cfg-hello': HELLO_FIXTURE } }, ['default', 'other']);
  app = mkdtempSync(join(tmpdir(), 'sigma-app-'));
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(ROOT, join(app, 'node_modules', 'sigma-ts'), 'dir');
  symlinkSync(join(ROOT, 'node_modules', '@types'), join(app, 'node_modules', '@types'), 'dir');
  context = join(app, 'context.json');
  writeContext({ name: 'test', nats: tc.cluster.natsUrl, dataDir: tc.cluster.dataDir }, context);
});
test.after.always(async () => {
  await tc?.stop();
  if (app !== undefined) rmSync(app, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** Runs a command in the application's directory, with the context file as its only way to the cluster. */
const run = (file: string, args: string[], cwd = app, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve) => {
    const child = execFile(file, args, { cwd, timeout: RUN_TIMEOUT_MS, encoding: 'utf8', env: { ...process.env, SIGMA_NATS: '', SIGMA_CONTEXT: context, ...env } }, (_e, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
  });
const sigma = (...args: string[]): Promise<Run> => run(process.execPath, [CLI, ...args]);
const write = (rel: string, text: string): string => {
  const f = join(app, rel);
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, text);
  return f;
};
const serviceSource = (answer: string): string => `import { ServiceProc, type DataMessage } from 'sigma-ts';
export default class V extends ServiceProc<never> {
  receive(): void {}
  onData(_m: DataMessage): string { return ${JSON.stringify(answer)}; }
}
`;

/** Runs (it loads, and its default export is a FunctionProc); only a compiler finds what is wrong. */
const typeErrorSource = `import { FunctionProc } from 'sigma-ts';
export default class Typed extends FunctionProc<[string]> {
  run([who]: [string]): number { const n: number = who; return n; }
}
`;

test.serial('sdk - sigma new writes a function and a service whose tests pass in-process; deployed from outside the repo they run on the cluster', async (t) => {
  for (const [name, kind] of [['greet', '--function'], ['upper', '--service']] as const) {
    const made = await sigma('new', name, kind);
    t.is(made.code, EXIT.ok, made.stderr);
    // A test of its own, compiled against the package's types, run without a cluster.
    const built = await run(TSC, ['-p', '.'], join(app, name));
    t.is(built.code, 0, `${built.stdout}${built.stderr}`);
    const tested = await run(process.execPath, ['--test', 'dist/'], join(app, name));
    t.is(tested.code, 0, `${tested.stdout}${tested.stderr}`);
    t.regex(tested.stdout, /# pass [12]/);
  }
  // Deployed (found through the context file), then run: the function calls the service by name.
  t.is((await sigma('deploy', 'upper')).code, EXIT.ok);
  const d = await sigma('--json', 'deploy', 'greet');
  t.is(d.code, EXIT.ok, d.stderr);
  t.like(JSON.parse(d.stdout), { realm: 'default', name: 'greet', version: 1, kind: 'function' });
  await startService(tc, 'upper', 'upper');
  const r = await sigma('spawn', 'greet', 'sigma', '--wait');
  t.is(r.code, EXIT.ok, r.stderr);
  t.regex(r.stdout, /ok: "hello SIGMA"/);
  // The client library from the application, finding the cluster the same way.
  write('list.mjs', `import { connect } from 'sigma-ts/client';\nconst c = await connect();\nconsole.log(JSON.stringify({ source: c.address.source, names: (await c.client.names('default')).map((n) => n.name) }));\nawait c.close();\n`);
  const listed = await run(process.execPath, ['list.mjs']);
  t.is(listed.code, 0, listed.stderr);
  t.like(JSON.parse(listed.stdout), { source: `context file ${context}`, names: ['upper'] });
});

test.serial('cli - without a reachable cluster it says which address it tried and where that came from (exit 4)', async (t) => {
  const dead = join(app, 'dead.json');
  writeContext({ name: 'gone', nats: 'nats://sigma:secret@127.0.0.1:1', dataDir: app }, dead);
  const r = await run(process.execPath, [CLI, 'nodes'], app, { SIGMA_CONTEXT: dead });
  t.is(r.code, EXIT.unavailable);
  t.regex(r.stderr, /127\.0\.0\.1:1/);
  t.regex(r.stderr, new RegExp(`context file ${dead}`));
  t.notRegex(r.stderr, /secret/);
  const env = await run(process.execPath, [CLI, 'nodes'], app, { SIGMA_NATS: 'nats://127.0.0.1:2', SIGMA_CONTEXT: join(app, 'none.json') });
  t.is(env.code, EXIT.unavailable);
  t.regex(env.stderr, /127\.0\.0\.1:2 \(from SIGMA_NATS\)/);
  const none = await run(process.execPath, [CLI, 'nodes'], app, { SIGMA_CONTEXT: join(app, 'none.json') });
  t.is(none.code, EXIT.unavailable);
  t.regex(none.stderr, /no context file/);
});

test.serial('deploy - bad input is refused at deploy time with a typed error and the right exit code', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['deploy', write('bad/not-proc.ts', 'export default class X {}\n')], EXIT.refused, /not-a-proc: .*class X/],
    [['deploy', write('bad/no-default.ts', 'export const x = 1;\n')], EXIT.refused, /not-a-proc: .*no default export/],
    [['deploy', write('bad/syntax.ts', 'export default class {\n  run( {\n}\n')], EXIT.refused, /syntax: [^]*syntax\.ts:\d+:\d+: Expected/],
    [['deploy', write('bad/throws.ts', "throw new Error('at load');\n")], EXIT.refused, /load: .*at load/],
    [['deploy', write('bad/typed.ts', typeErrorSource)], EXIT.refused, /type: [^]*typed\.ts\(3,\d+\): error TS2322/],
    [['deploy', write('bad/ok.ts', serviceSource('x')), '--realm', 'nowhere'], EXIT.refused, /unknown-realm/],
    [['deploy', write('bad/big.ts', `import { FunctionProc } from 'sigma-ts';\nconst blob = ${JSON.stringify('x'.repeat(PROGRAM_BYTES_MAX))};\nexport default class B extends FunctionProc { run() { return blob.length; } }\n`)], EXIT.refused, /too-large/],
    [['deploy', join(app, 'bad', 'missing.ts')], EXIT.usage, /no-entry/],
    [['deploy', join(app, 'bad', 'ok.ts'), '--name', 'a.b'], EXIT.usage, /bad-name/],
    [['deploy', join(app, 'bad', 'ok.ts'), '--name', 'hello'], EXIT.usage, /bad-name: "hello" is a built-in program/],
    [['deploy', 'never-deployed', '--rollback'], EXIT.refused, /unknown-program/],
  ];
  for (const [args, code, re] of cases) {
    const r = await sigma(...args);
    t.is(r.code, code, `sigma ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, re);
  }
  const ls = await sigma('--json', 'programs', 'ls');
  t.false((JSON.parse(ls.stdout) as Array<{ name: string }>).some((p) => ['not-proc', 'no-default', 'syntax', 'throws', 'typed', 'big', 'ok'].includes(p.name)));
  // The type check is the only thing that refused it: without it, the same file deploys.
  const unchecked = await sigma('deploy', join(app, 'bad', 'typed.ts'), '--no-type-check');
  t.is(unchecked.code, EXIT.ok, unchecked.stderr);
});

test.serial('deploy - a new version applies to new spawns, running procs keep theirs; rollback and rm', async (t) => {
  const file = write('ver/ver.ts', serviceSource('one'));
  t.is((await sigma('deploy', file)).code, EXIT.ok);
  await startService(tc, 'ver', 'ver1');
  write('ver/ver.ts', serviceSource('two'));
  t.is((await sigma('deploy', file)).code, EXIT.ok);
  await startService(tc, 'ver', 'ver2');
  t.is((await sigma('call', 'ver1', 'x')).stdout.trim(), 'one');
  t.is((await sigma('call', 'ver2', 'x')).stdout.trim(), 'two');
  const back = await sigma('deploy', 'ver', '--rollback');
  t.is(back.code, EXIT.ok, back.stderr);
  t.regex(back.stdout, /new spawns get v1/);
  await startService(tc, 'ver', 'ver3');
  t.is((await sigma('call', 'ver3', 'x')).stdout.trim(), 'one');
  const ls = JSON.parse((await sigma('--json', 'programs', 'ls')).stdout) as Array<{ name: string; current: number; versions: Array<{ version: number }> }>;
  t.like(ls.find((p) => p.name === 'ver'), { current: 1 });
  t.deepEqual(ls.find((p) => p.name === 'ver')!.versions.map((v) => v.version), [1, 2]);
  t.is((await sigma('deploy', 'ver', '--rollback', '7')).code, EXIT.refused);
  t.is((await sigma('programs', 'rm', 'ver')).code, EXIT.ok);
  t.is((await sigma('spawn', 'ver', '--name', 'ver4')).code, EXIT.refused);
  t.is((await sigma('call', 'ver1', 'x')).stdout.trim(), 'one'); // still running its own bundle
});

test.serial('tenancy - realm other can neither spawn, list, roll back, remove nor read the programs of realm default', async (t) => {
  t.is((await sigma('deploy', write('secret/secret.ts', serviceSource('secret')))).code, EXIT.ok);
  t.is((await sigma('deploy', write('secret/secret.ts', serviceSource('secret 2')))).code, EXIT.ok);
  const spawned = await sigma('spawn', 'secret', '--realm', 'other', '--name', 'stolen');
  t.is(spawned.code, EXIT.refused);
  t.regex(spawned.stderr, /no program "secret" in realm other/);
  const ls = JSON.parse((await sigma('--json', 'programs', 'ls', '--realm', 'other')).stdout) as Array<{ name: string }>;
  t.false(ls.some((p) => p.name === 'secret'));
  t.is((await sigma('deploy', 'secret', '--rollback', '--realm', 'other')).code, EXIT.refused);
  t.is((await sigma('programs', 'rm', 'secret', '--realm', 'other')).code, EXIT.refused);
  // Still there, current v2, for its own realm.
  const mine = JSON.parse((await sigma('--json', 'programs', 'ls')).stdout) as Array<{ name: string; current: number }>;
  t.like(mine.find((p) => p.name === 'secret'), { current: 2 });
  await startService(tc, 'secret', 'secret'); // its bundle now sits in realm default's cache on the node
  t.is((await sigma('call', 'secret', 'x')).stdout.trim(), 'secret 2');

  // From inside a proc of realm other: its own cache is readable, realm default's is not.
  t.is((await sigma('deploy', write('peek/peek.ts', `import { FunctionProc } from 'sigma-ts';
import { readdirSync } from 'node:fs';
export default class Peek extends FunctionProc<[string, string], Record<string, string>> {
  run([mine, theirs]: [string, string]) {
    const tryDir = (d: string) => { try { return readdirSync(d).join(','); } catch (e) { return (e as { code?: string }).code ?? 'error'; } };
    return { mine: tryDir(mine), theirs: tryDir(theirs) };
  }
}
`), '--realm', 'other')).code, EXIT.ok);
  const programsDir = join(tc.cluster.dataDir, 'programs');
  const pid = await tc.client.spawn({ program: 'peek', realm: 'other', args: [join(programsDir, 'other'), join(programsDir, 'default')] });
  const st = await tc.client.waitExit(pid, { timeoutMs: 30_000 });
  t.is(st.kind, 'ok', st.message);
  const seen = st.data as { mine: string; theirs: string };
  t.regex(seen.mine, /^[0-9a-f]{64}\.mjs/); // its own bundle, fetched by the node
  t.true(readdirSync(join(programsDir, 'default')).length > 0); // there is something to hide
  if (isolationStatus().sandboxed) t.is(seen.theirs, 'EACCES');
  else t.log('hosts are not sandboxed here: the file-system wall is not tested');
});

test.serial('deploy - a spawn whose bundle is gone from the store ends error with the reason', async (t) => {
  t.is((await sigma('deploy', write('gone/gone.ts', serviceSource('gone')))).code, EXIT.ok);
  const store = await tc.bus.objectStore!('sigma_program_code');
  const ls = JSON.parse((await sigma('--json', 'programs', 'ls')).stdout) as Array<{ name: string; versions: Array<{ hash: string }> }>;
  await store.delete(ls.find((p) => p.name === 'gone')!.versions[0]!.hash);
  const pid = await tc.client.spawn({ program: 'gone', name: 'gone' });
  const st = await waitFor(() => tc.client.proc(pid), (r) => r?.status !== undefined);
  t.is(st!.status!.kind, 'error');
  t.regex(st!.status!.message, /could not fetch program gone v1: .*no bundle/);
});

test.serial('deploy - a version names where its bundle\'s one chunk is: a fetch told it reads it in one go; a stale, malformed or wrong location falls back to the info', async (t) => {
  t.is((await sigma('deploy', write('chunk/chunked.ts', serviceSource('chunked')))).code, EXIT.ok);
  const store = await programStore(tc.bus);
  const v = (await store.list('default')).find((p) => p.name === 'chunked')!.versions[0]!;
  t.regex(v.chunk ?? '', CHUNK_TOKEN);
  const ref = await store.resolve('default', 'chunked');
  t.is(ref?.chunk, v.chunk); // carried to the node in the run order
  const bundle = await store.fetch(v.hash, v.chunk);
  t.is(hashOf(bundle), v.hash);
  t.deepEqual(await store.fetch(v.hash, 'NoSuchChunk0000000000'), bundle);
  t.deepEqual(await store.fetch(v.hash, '*.>'), bundle);
  t.deepEqual(await store.fetch(v.hash), bundle);
  // The object store itself: put says where, locate says the same, get with it returns the object.
  const objects = await tc.bus.objectStore!('sigma_program_code');
  t.deepEqual(await objects.locate(v.hash), { chunk: v.chunk });
  t.is(await objects.locate('0'.repeat(64)), null);
  const data = new TextEncoder().encode('not a program\n');
  const at = await objects.put('test-object', data);
  t.deepEqual(new Uint8Array((await objects.get('test-object', at))!), data);
  await objects.delete('test-object');
  t.is(await objects.get('test-object', at), null);
  // Another bundle's chunk under this hash: the check against the hash refuses it.
  t.is((await sigma('deploy', write('chunk/unchunked.ts', serviceSource('unchunked')))).code, EXIT.ok);
  const other = (await store.list('default')).find((p) => p.name === 'unchunked')!.versions[0]!;
  t.deepEqual(await store.fetch(v.hash, other.chunk), bundle); // another bundle's chunk: checked, then read by the info
});

test.serial('deploy - a program of cluster.config.ts resolves without a read of the realm\'s key once the programs watch has caught up; an unknown name is still read', async (t) => {
  let reads = 0;
  // The bus and its buckets with every KV read counted (methods bound: they use private fields).
  const bound = <T extends object>(o: T, k: string | symbol): unknown => {
    const v = Reflect.get(o, k, o) as unknown;
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(o) : v;
  };
  const counted = new Proxy(tc.bus, {
    get: (bus, k) =>
      k === 'kv'
        ? async (...a: Parameters<typeof bus.kv>) => new Proxy(await bus.kv(...a), { get: (kv, m) => (m === 'get' ? (...g: Parameters<typeof kv.get>) => (reads++, kv.get(...g)) : bound(kv, m)) })
        : bound(bus, k),
  });
  const store = await programStore(counted);
  const follow = await store.follow(() => {});
  t.teardown(() => follow.stop());
  await waitFor(async () => { const before = reads; await store.resolve('default', 'cfg-hello'); return reads - before; }, (n) => n === 0);
  t.like(await store.resolve('default', 'cfg-hello'), { version: 1 });
  const before = reads;
  t.is(await store.resolve('default', 'no-such-program'), undefined);
  t.true(reads > before);
});

test.serial('deploy - the programs of cluster.config.ts are deployed at start for every realm; a realm\'s own program of the name comes first', async (t) => {
  for (const realm of ['default', 'other']) {
    const r = await sigma('spawn', 'cfg-hello', 'there', '--realm', realm, '--wait');
    t.is(r.code, EXIT.ok, r.stderr);
  }
  const ls = await sigma('programs', 'ls', '--realm', 'other');
  t.regex(ls.stdout, /cfg-hello\s+cluster\s+v1\s+function/);
  // Not on the nodes' disks as a module path: fetched into the realm's cache like any deployed program.
  t.true(readdirSync(join(tc.cluster.dataDir, 'programs', 'other')).some((f) => f.endsWith('.mjs')));
  write('own/cfg-hello.ts', `import { FunctionProc } from 'sigma-ts';\nexport default class Mine extends FunctionProc { run() { return 'mine'; } }\n`);
  t.is((await sigma('deploy', join(app, 'own', 'cfg-hello.ts'), '--realm', 'other')).code, EXIT.ok);
  t.regex((await sigma('spawn', 'cfg-hello', '--realm', 'other', '--wait')).stdout, /ok: "mine"/);
  t.notRegex((await sigma('spawn', 'cfg-hello', 'x', '--wait')).stdout, /mine/);
});

test.serial('roll - a service moves to the new version without a gap in its name', async (t) => {
  const file = write('roll/rolled.ts', serviceSource('old'));
  t.is((await sigma('deploy', file)).code, EXIT.ok);
  const { pid: old } = await startService(tc, 'rolled', 'rolled');
  write('roll/rolled.ts', serviceSource('new'));
  t.is((await sigma('deploy', file)).code, EXIT.ok);
  // The name, read back to back for the whole roll: never missing, first the old proc, then the new one.
  let rolling = true;
  const seen: string[] = [];
  const reader = (async () => {
    while (rolling) seen.push((await tc.client.names('default')).find((n) => n.name === 'rolled')?.pid ?? 'missing');
  })();
  const r = await sigma('--json', 'roll', 'rolled');
  await tc.client.waitExit(old, { timeoutMs: 10_000 });
  rolling = false;
  await reader;
  t.is(r.code, EXIT.ok, r.stderr);
  const rolled = JSON.parse(r.stdout) as { from: string; to: string };
  t.is(rolled.from, old);
  t.false(seen.includes('missing'), seen.join(' '));
  t.is(seen.at(-1), rolled.to);
  t.is((await tc.client.waitExit(old)).kind, 'evicted');
  // Callers that had the old endpoint cached resolve again once it is closed (ENDPOINT_LINGER_MS).
  t.is(await waitFor(() => tc.client.dataPathCall('rolled', 'x').catch((e: unknown) => (e as Error).message), (a) => a === 'new', 5_000), 'new');
  t.is((await sigma('roll', 'no-such-service')).code, EXIT.refused);
});

test.serial('tenancy - a removed realm takes its programs with it: a realm made later under its name has none', async (t) => {
  t.is((await sigma('realm', 'create', 'short')).code, EXIT.ok);
  t.is((await sigma('deploy', write('short/mine.ts', serviceSource('mine')), '--realm', 'short')).code, EXIT.ok);
  const rm = await sigma('realm', 'rm', 'short');
  t.is(rm.code, EXIT.ok, rm.stderr);
  t.regex(rm.stdout, /and its 1 programs/);
  t.is((await sigma('realm', 'create', 'short')).code, EXIT.ok);
  t.deepEqual(JSON.parse((await sigma('--json', 'programs', 'ls', '--realm', 'short')).stdout), []);
  t.is((await sigma('spawn', 'mine', '--realm', 'short', '--name', 'mine')).code, EXIT.refused);
});
