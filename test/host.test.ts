import test from 'ava';
import { fileURLToPath } from 'node:url';
import type { ToNode } from '../src/host/protocol.js';
import { ForkHostLauncher, type HostHandle } from '../src/node/host-process.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/procs/${name}.js`, import.meta.url));
const example = (name: string) => fileURLToPath(new URL(`../src/examples/${name}.js`, import.meta.url));

/** Collects a host's messages and resolves waiters for a given proc's exit. */
function recorder(h: HostHandle) {
  const msgs: ToNode[] = [];
  const waiters: Array<() => void> = [];
  h.onMessage((m) => {
    msgs.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (pred: (m: ToNode) => boolean): Promise<ToNode> => {
    for (;;) {
      const hit = msgs.find(pred);
      if (hit) return hit;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const exitOf = (pid: string) => next((m) => m.t === 'exited' && m.pid === pid) as Promise<Extract<ToNode, { t: 'exited' }>>;
  return { msgs, next, exitOf };
}

let host: HostHandle;
let rec: ReturnType<typeof recorder>;

test.before(async () => {
  process.env['NODE_EXTRA_CA_CERTS'] = '/nonexistent/ca.pem'; // must not reach the host
  host = await new ForkHostLauncher().start('host-test', 'default');
  rec = recorder(host);
});

test.after.always(() => host.kill());

test.serial('host - a function proc starts, logs to its own stream and exits ok with its result', async (t) => {
  host.send({ t: 'run', pid: 'p1', modulePath: fixture('hello'), args: ['world'], realm: 'default' });
  const exit = await rec.exitOf('p1');
  t.deepEqual(exit.status, { kind: 'ok', message: 'ok', data: 'hello world' });
  t.truthy(rec.msgs.find((m) => m.t === 'started' && m.pid === 'p1'));
  const log = rec.msgs.find((m) => m.t === 'log' && m.pid === 'p1');
  t.is(log && log.t === 'log' ? log.data : '', 'hello from p1\n');
});

test.serial('host - failures, bad modules and non-proc classes end in error statuses, the host lives on', async (t) => {
  host.send({ t: 'run', pid: 'p2', modulePath: fixture('fail'), args: [], realm: 'default' });
  host.send({ t: 'run', pid: 'p3', modulePath: fixture('does-not-exist'), args: [], realm: 'default' });
  host.send({ t: 'run', pid: 'p4', modulePath: fixture('not-a-proc'), args: [], realm: 'default' });
  const [e2, e3, e4] = await Promise.all([rec.exitOf('p2'), rec.exitOf('p3'), rec.exitOf('p4')]);
  t.is(e2.status.kind, 'error');
  t.regex(e2.status.message, /deliberate failure/);
  t.regex(e3.status.message, /cannot load/);
  t.regex(e4.status.message, /must default-export a class extending FunctionProc or ServiceProc/);
  host.send({ t: 'ping', seq: 7 });
  t.deepEqual(await rec.next((m) => m.t === 'pong'), { t: 'pong', seq: 7 });
});

test.serial('host - a module with top-level await loads too; one that throws while loading ends in error', async (t) => {
  host.send({ t: 'run', pid: 'tla', modulePath: fixture('top-level-await'), args: [], realm: 'default' });
  host.send({ t: 'run', pid: 'broken', modulePath: fixture('throws-at-load'), args: [], realm: 'default' });
  const [ok, broken] = await Promise.all([rec.exitOf('tla'), rec.exitOf('broken')]);
  t.is(ok.status.kind, 'ok');
  t.is(ok.status.data, 'awaited at load');
  t.is(broken.status.kind, 'error');
  t.regex(broken.status.message ?? '', /broken at load/);
});

test.serial('host - cooperative eviction of a function and of a service', async (t) => {
  host.send({ t: 'run', pid: 'f1', modulePath: fixture('sleeper'), args: [], realm: 'default' });
  host.send({ t: 'run', pid: 's1', modulePath: example('counter'), args: [], realm: 'default' });
  const started = (await rec.next((m) => m.t === 'started' && m.pid === 's1')) as Extract<ToNode, { t: 'started' }>;
  t.is(started.kind, 'service');
  t.is(started.actorPath, 'actor://realm.default.host-test/procs/s1', "in its realm's part of the actor namespace");
  await rec.next((m) => m.t === 'started' && m.pid === 'f1');
  host.send({ t: 'evict', pid: 'f1' });
  host.send({ t: 'evict', pid: 's1' });
  t.is((await rec.exitOf('f1')).status.kind, 'evicted');
  t.is((await rec.exitOf('s1')).status.kind, 'evicted');
});

test.serial('host - start-up costs are stripped from the host environment', async (t) => {
  host.send({ t: 'run', pid: 'env', modulePath: fixture('env-probe'), args: [], realm: 'default' });
  t.deepEqual((await rec.exitOf('env')).status.data, { NODE_EXTRA_CA_CERTS: null, NODE_OPTIONS: null });
});

test.serial('host - a killed host reports its exit', async (t) => {
  const h = await new ForkHostLauncher().start('host-kill', 'default');
  const exited = new Promise<string | null>((r) => h.onExit((_c, sig) => r(sig)));
  h.kill();
  t.is(await exited, 'SIGKILL');
});

test.serial('host - without a data path, ctx.send fails with a typed error instead of hanging', async (t) => {
  host.send({ t: 'run', pid: 'dp1', modulePath: fixture('dp-try'), args: [], realm: 'default' });
  const exit = await rec.exitOf('dp1');
  t.deepEqual(exit.status, { kind: 'ok', message: 'ok', data: 'datapath-unavailable' });
});
