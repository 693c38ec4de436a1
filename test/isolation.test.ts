import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CREDENTIALS_FILE, realmPassword, realmUser, withUser } from '../src/cluster/nats-users.js';
import { REALM_ID_FIRST } from '../src/node/sandbox/realm-ids.js';
import { isolationStatus } from '../src/node/sandbox/probe.js';
import { decodeJson, NODE_BEAT } from '../src/control/protocol/index.js';
import { testCluster, waitFor, type TestCluster } from './helpers/cluster.js';

// Real malicious procs in a real cluster whose hosts are sandboxed: each attack is a test that fails if
// the attack works. As root only (giving each realm a uid needs root); elsewhere the node says plainly
// that hosts are not sandboxed, which the last test checks.
const sandboxed = isolationStatus().sandboxed;
const serial = sandboxed ? test.serial : test.serial.skip;
const attacker = fileURLToPath(new URL('../src/bench/procs/attacker.js', import.meta.url));

type Outcome = { ok: boolean; code?: string; detail?: string };
let tc: TestCluster;
let bystander: Server;
let bystanderPort = 0;

const run = async (realm: string, ...args: string[]): Promise<Outcome & Record<string, unknown>> => {
  const pid = await tc.client.spawn({ program: 'attacker', args, realm });
  const st = await tc.client.waitExit(pid, { timeoutMs: 20_000 });
  if (st.kind !== 'ok') throw new Error(`attacker ${args.join(' ')} ended ${st.kind}: ${st.message}`);
  return st.data as Outcome & Record<string, unknown>;
};
const blocked = async (t: import('ava').ExecutionContext, realm: string, ...args: string[]): Promise<void> => {
  const o = await run(realm, ...args);
  t.false(o.ok, `${args.join(' ')} from realm ${realm} must fail, it worked: ${JSON.stringify(o)}`);
};
/** A realm's NATS URL with its user, as nats-server knows it: what a proc that learned its host's password would hold. */
const realmUrl = (realm: string): string => {
  const creds = JSON.parse(readFileSync(join(tc.cluster.dataDir, CREDENTIALS_FILE), 'utf8')) as { realms: string };
  const u = new URL(tc.cluster.natsUrl);
  return withUser(`nats://${u.host}`, realmUser(realm), realmPassword(creds.realms, realm));
};
const pidOf = (pattern: string): number => Number(execFileSync('pgrep', ['-o', '-f', pattern], { encoding: 'utf8' }).trim());

test.before(async () => {
  if (!sandboxed) return;
  tc = await testCluster({ nodes: 1, node: { mcpu: 4000, memMb: 8192, beSlots: 8 }, programs: { attacker } }, ['default', 'alpha', 'beta']);
  bystander = createServer((s) => s.destroy());
  await new Promise<void>((r) => bystander.listen(0, '127.0.0.1', () => r()));
  bystanderPort = (bystander.address() as { port: number }).port;
});
test.after.always(async () => {
  bystander?.close();
  await tc?.stop();
});

serial('isolation - each realm runs as a uid of its own, with no capabilities, no_new_privs, a syscall filter and only the fds a host needs', async (t) => {
  const a = await run('alpha', 'whoami');
  const b = await run('beta', 'whoami');
  for (const w of [a, b]) {
    t.true((w['uid'] as number) >= REALM_ID_FIRST, JSON.stringify(w));
    t.is(w['capEff'], '0000000000000000');
    t.is(w['noNewPrivs'], '1');
    t.is(w['seccomp'], '2', 'a seccomp filter is installed');
    const fds = w['fds'] as Record<string, { detail?: string }>;
    t.regex(fds['4']?.detail ?? '', /memfd:/, 'fd 4 is the realm pool');
    const leaks = Object.entries(fds).filter(([, l]) => (l.detail ?? '').startsWith(tc.cluster.dataDir) || /\.log$/.test(l.detail ?? ''));
    t.deepEqual(leaks, [], 'nothing of the node (its logs, its data) is open in the host');
  }
  t.not(a['uid'], b['uid']);
  t.is(a['uid'], (await run('alpha', 'whoami'))['uid'], 'the same realm keeps its uid');
  // A proc that spins or forks competes from inside its host's own cpu and pids groups (their limits:
  // test/sandbox.test.ts; what a spinner costs others: the isolation benchmark's noisy neighbour).
  for (const w of [a, b]) for (const c of ['cpu', 'memory', 'pids']) t.regex(w['cgroup'] as string, new RegExp(`:${c}[^:]*:/sigma/node-1\\.\\d+/node-1-h\\d+$`, 'm'), `${c}: ${String(w['cgroup'])}`);
  const node = (await tc.client.nodes())[0];
  t.deepEqual(node?.isolation, { sandboxed: true, missing: [] });
});

serial('isolation - a proc cannot read secrets, the cluster data, another realm files, or write outside its own directory', async (t) => {
  t.true((await run('alpha', 'write-home', 'secret', 'alpha only')).ok, 'a realm writes its own directory');
  const alphaHome = join(tc.cluster.dataDir, 'realms', 'alpha', 'secret');
  t.true((await run('alpha', 'read', alphaHome)).ok, 'and reads it back');
  await blocked(t, 'beta', 'read', alphaHome);
  await blocked(t, 'beta', 'list', join(tc.cluster.dataDir, 'realms', 'alpha'));
  await blocked(t, 'beta', 'read', '/etc/shadow');
  await blocked(t, 'beta', 'list', join(tc.cluster.dataDir, 'realm-ids'));
  await blocked(t, 'beta', 'read', join(tc.cluster.dataDir, 'nats-credentials.json'));
  await blocked(t, 'beta', 'list', join(tc.cluster.dataDir, 'logs'));
  await blocked(t, 'beta', 'list', join(tc.cluster.dataDir, 'nats'));
  await blocked(t, 'beta', 'write', '/tmp/sigma-pwned');
  await blocked(t, 'beta', 'write', join(tc.cluster.dataDir, 'realms', 'alpha', 'secret'));
});

serial("isolation - a proc can neither signal nor look into the node, nats-server or another realm's host (its pool memfd)", async (t) => {
  const alphaHost = (await run('alpha', 'whoami'))['pid'] as number;
  await blocked(t, 'beta', 'read', `/proc/${alphaHost}/fd/4`);
  await blocked(t, 'beta', 'read', `/proc/${alphaHost}/environ`);
  await blocked(t, 'beta', 'signal', String(alphaHost));
  await blocked(t, 'beta', 'signal', String(pidOf('node/main.js')));
  await blocked(t, 'beta', 'signal', String(pidOf('nats-server')));
  await blocked(t, 'beta', 'signal', String(process.pid));
  t.true(readFileSync(`/proc/${alphaHost}/status`, 'utf8').length > 0, 'root (the node) still sees the host');
});

serial('isolation - a proc opens no socket of its own but TCP to NATS: no UDP, no listening, no other port; it cannot exec', async (t) => {
  await blocked(t, 'beta', 'udp');
  await blocked(t, 'beta', 'listen');
  await blocked(t, 'beta', 'connect', '127.0.0.1', String(bystanderPort));
  const channel = (await tc.client.nodes())[0]!.datapath!;
  await blocked(t, 'beta', 'connect', channel.host, String(channel.port));
  await blocked(t, 'beta', 'exec', '/bin/sh', '-c\u0000id');
  // Node itself may run (a proc may fork a worker), but inside the same walls.
  await blocked(t, 'beta', 'exec', process.execPath, "-e\u0000require('fs').readFileSync('/etc/shadow')");
  const nats = new URL(tc.cluster.natsUrl);
  t.true((await run('beta', 'connect', nats.hostname, nats.port)).ok, 'the control plane stays reachable');
});

serial("isolation - a proc cannot use NATS as the control plane: no anonymous user; its realm's user may not spawn, order a node, create realms, or read or write the proc table or names", async (t) => {
  const bare = new URL(realmUrl('beta'));
  bare.username = bare.password = '';
  await blocked(t, 'beta', 'nats', 'anonymous', bare.toString());
  for (const attempt of ['spawn', 'node-order', 'realms', 'proc-table', 'names', 'eavesdrop']) await blocked(t, 'beta', 'nats', attempt, realmUrl('beta'));
  t.deepEqual(await tc.client.realms(), ['alpha', 'beta', 'default'], 'no realm was made');
  t.is(await tc.client.proc('forged'), undefined, 'the proc table holds no forged record');
  const pid = await tc.client.spawn({ program: 'attacker', args: ['whoami'], realm: 'alpha' });
  t.is((await tc.client.waitExit(pid, { timeoutMs: 20_000 })).kind, 'ok', 'the control plane itself works with its own user');
});

serial("isolation - a proc reaches its own realm's journal only: another realm's it can neither read, append to nor delete, and it makes no stream or consumer, not even on its own journal", async (t) => {
  const own = await run('alpha', 'journal-own', 'isolation');
  t.deepEqual(own, { ok: true, detail: JSON.stringify({ seq: 2, events: ['one', 'two'] }) }, 'a proc journals in its own realm (ctx.journal)');
  // The same attempts on its own journal work: the refusals below are the wall, not a broken attack.
  t.true((await run('beta', 'journal', 'append', realmUrl('beta'), 'beta')).ok, 'its own journal, as its realm user');
  t.true((await run('beta', 'journal', 'read', realmUrl('beta'), 'beta')).ok);
  const refused = { ok: false, code: 'permission' };
  for (const attempt of ['read', 'append', 'delete', 'purge', 'remove', 'info', 'consumer-create']) t.deepEqual(await run('beta', 'journal', attempt, realmUrl('beta'), 'alpha'), refused, `${attempt} on alpha's journal`);
  for (const attempt of ['stream-create', 'consumer-create', 'purge', 'remove', 'account']) t.deepEqual(await run('beta', 'journal', attempt, realmUrl('beta'), 'beta'), refused, `${attempt} on beta's own`);
  t.deepEqual(await run('alpha', 'journal', 'read', realmUrl('alpha'), 'alpha'), { ok: true, detail: 'null' }, "nothing was written into alpha's journal under the attacker's id");
});

serial('isolation - a proc over its memory is killed and ends crashed, naming the limit; the node and other procs go on', async (t) => {
  const pid = await tc.client.spawn({ program: 'attacker', args: ['hog', '4096'], realm: 'beta', lc: true, mcpu: 100, memMb: 64, dedicated: true });
  const st = await tc.client.waitExit(pid, { timeoutMs: 30_000 });
  t.is(st.kind, 'crashed', JSON.stringify(st));
  t.regex(st.message, /over its memory limit of 192 MB/);
  t.true((await run('beta', 'whoami'))['uid'] !== undefined, 'the realm still runs procs');
});

serial("isolation - a proc cannot forge a node's heartbeat on core NATS: nothing of it reaches the scheduler's subject", async (t) => {
  const heard: string[] = [];
  const sub = tc.bus.subscribe(NODE_BEAT.subject);
  void (async () => {
    for await (const m of sub) heard.push(NODE_BEAT.message(decodeJson(m.data))?.id ?? '?');
  })();
  await tc.bus.flush();
  for (let seq = 1; seq <= 3; seq++) t.true((await run('beta', 'nats', 'heartbeat', realmUrl('beta'), String(seq))).ok, 'the proc published');
  await waitFor(async () => heard.length, (n) => n >= 3, 10_000); // real nodes' heartbeats do arrive meanwhile
  sub.unsubscribe();
  t.false(heard.includes('forged-node'), `heard: ${[...new Set(heard)].join(', ')}`);
});

serial("isolation - an actor frame a proc sends into a node's actor system reaches nothing: the node manager keeps its procs", async (t) => {
  const service = await tc.client.spawn({ program: 'counter', name: 'keeper', realm: 'alpha' });
  await tc.client.waitStart(service, { timeoutMs: 20_000 });
  // A message the node manager would fail on (a run order without its order): it would restart and lose its procs.
  for (const msg of ['{"type":"run"}', '{"type":"host-exit","hostId":"x"}', '{"type":"tick"}']) t.true((await run('beta', 'nats', 'frame', realmUrl('beta'), 'actor://node-1/node', msg)).ok);
  t.is((await tc.client.proc(service))?.state, 'running');
  await tc.client.evict(service, { graceMs: 200 });
  t.is((await tc.client.waitExit(service, { timeoutMs: 20_000 })).kind, 'evicted', 'the node still knows and evicts it');
});

serial("isolation - a realm's NATS user reaches its own realm's actors only: another realm's service gets no frame from it, and nothing of that realm is heard", async (t) => {
  const victim = await tc.client.spawn({ program: 'counter', name: 'tally', realm: 'alpha' });
  await tc.client.waitStart(victim, { timeoutMs: 20_000 });
  const path = (await tc.client.names('alpha')).find((n) => n.name === 'tally')!.actorPath;
  t.regex(path, /^actor:\/\/realm\.alpha\./, "the service lives in its realm's part of the actor namespace");
  t.true((await run('beta', 'nats', 'frame', realmUrl('beta'), path, '{"type":"add","n":1000}')).ok, 'the publish itself raises nothing');
  await blocked(t, 'beta', 'nats', 'listen', realmUrl('beta'), 'alpha');
  const tally = tc.system('alpha').refFor<{ type: 'add'; n: number } | { type: 'get'; replyTo: unknown }>(path);
  tally.tell({ type: 'add', n: 1 });
  t.is(await tally.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000), 1, "beta's frame never arrived; alpha's own did");
  // The same frame with alpha's user does arrive: the refusal above is the wall, not a broken attack.
  t.true((await run('alpha', 'nats', 'frame', realmUrl('alpha'), path, '{"type":"add","n":1000}')).ok);
  t.is(await tally.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000), 1001);
  await tc.client.evict(victim, { graceMs: 200 });
});

serial("isolation - a realm's NATS password reaches its hosts over IPC: not in a proc's environment, /proc/self/environ or command line", async (t) => {
  const password = new URL(realmUrl('beta')).password;
  await blocked(t, 'beta', 'secrets', decodeURIComponent(password));
});

serial("isolation - a proc that fills its directory fills a capped scratch of its host's own, not the node's disk", async (t) => {
  await tc.client.createRealm('gamma', { quota: { diskMb: 8 } });
  const o = await run('gamma', 'fill', '64');
  t.false(o.ok, `the writes must stop at the cap: ${JSON.stringify(o)}`);
  t.is(o.code, 'ENOSPC');
  t.true((o['written'] as number) <= 8, JSON.stringify(o));
  t.false(existsSync(join(tc.cluster.dataDir, 'realms', 'gamma', 'fill')), 'nothing landed on the disk');
});

serial("isolation - a proc cannot speak for another realm's proc to its node: a forged exit or log line is ignored", async (t) => {
  const victim = await tc.client.spawn({ program: 'counter', name: 'victim', realm: 'alpha' });
  await tc.client.waitStart(victim, { timeoutMs: 20_000 });
  // The forged messages go down the beta host's IPC channel ahead of the attacker's own exit, which
  // run() waits for: the node has handled them by the time it returns.
  t.true((await run('beta', 'forge', victim)).ok);
  t.is((await tc.client.proc(victim))?.state, 'running', 'the forged exit ended nothing');
  const log = join(tc.cluster.dataDir, 'logs', `${victim}.log`);
  t.false(existsSync(log) && readFileSync(log, 'utf8').includes('forged'), 'and wrote nothing into its log');
  await tc.client.evict(victim, { graceMs: 200 });
  t.is((await tc.client.waitExit(victim, { timeoutMs: 20_000 })).kind, 'evicted');
});

test('isolation - a node that cannot sandbox says which protection is missing', (t) => {
  const st = isolationStatus();
  t.is(st.sandboxed, st.missing.length === 0);
  if (!st.sandboxed) t.log(`hosts here are not sandboxed: ${st.missing.join('; ')}`);
  else t.true(st.landlockAbi >= 4);
});
