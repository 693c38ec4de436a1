import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Pool } from '../src/datapath/pool.js';
import { mapFd } from '../src/native/index.js';
import { NodeDataPath } from '../src/node/datapath/node-datapath.js';
import { silent } from './helpers/actors.js';

/**
 * Mode selection of the node's data path: `auto` is bpf when the object loads and userspace otherwise,
 * saying why; `bpf` refuses to start without it; `userspace` never touches BPF. The unprivileged case
 * runs in a child dropped to nobody (as test/bpf.test.ts does), so it is exercised by a root CI too.
 */
const script = (mode: string): string => `const { NodeDataPath } = await import(${JSON.stringify(new URL('../src/node/datapath/node-datapath.js', import.meta.url).href)});
  const { pino } = await import('pino');
  try {
    const dp = await NodeDataPath.create({ node: 'n', mode: ${JSON.stringify(mode)}, log: pino({ level: 'silent' }) });
    console.log(JSON.stringify({ mode: dp.mode, reason: dp.reason, status: dp.status() }));
    dp.close();
  } catch (e) { console.log(JSON.stringify({ error: e.message })); }`;

async function unprivileged(mode: string): Promise<{ mode?: string; reason?: string; error?: string }> {
  const run = promisify(execFile);
  const args = ['--input-type=module', '-e', script(mode)];
  const { stdout } = process.getuid?.() === 0
    ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, ...args])
    : await run(process.execPath, args);
  return JSON.parse(stdout.trim().split('\n').pop()!) as { mode?: string; reason?: string; error?: string };
}

test('node datapath - without privileges, auto falls back to userspace and says why; bpf refuses to start', async (t) => {
  const auto = await unprivileged('auto');
  t.is(auto.mode, 'userspace', JSON.stringify(auto));
  t.regex(auto.reason ?? '', /auto: userspace, because .*(root|CAP_BPF|addon)/);
  const forced = await unprivileged('bpf');
  t.regex(forced.error ?? '', /mode 'bpf' was configured but .*; use 'auto' or 'userspace'/);
});

test('node datapath - userspace is chosen when configured, even where BPF would load', async (t) => {
  const dp = await NodeDataPath.create({ node: 'n', mode: 'userspace', log: silent });
  try {
    t.is(dp.mode, 'userspace');
    t.is(dp.status().kernel, undefined);
    t.deepEqual(dp.status().pools, {});
  } finally {
    dp.close();
  }
});

test('node datapath - a pool per realm shared through its memfd, node-unique endpoints, reclaim on close, the pool freed with the last host', async (t) => {
  const dp = await NodeDataPath.create({ node: 'n', mode: 'userspace', log: silent, poolBytes: 8 << 20 });
  const sent: unknown[] = [];
  const handle = (id: string) => ({ hostId: id, realm: 'r', pid: undefined, send: (m: unknown) => (sent.push(m), true), onMessage: () => {}, onExit: () => {}, kill: () => {} });
  try {
    const a = await dp.prepareHost('h1', 'r');
    const b = await dp.prepareHost('h2', 'r');
    const c = await dp.prepareHost('h3', 'other');
    t.is(a.fds[0], b.fds[0], 'one pool per realm');
    t.not(a.fds[0], c.fds[0], 'another realm, another pool');
    t.is(a.fds.length, 2, "the pool and the host's end of its connection");
    t.not(a.fds[1], b.fds[1], 'a connection per host');
    t.is(a.attach.socketFd, 5, 'where the host finds its connection (fd 4 is the pool)');
    t.is(dp.openEndpoint('h1'), undefined, 'no endpoints before the host is attached');
    t.true(dp.attachHost(a, handle('h1')));
    t.true(dp.attachHost(b, handle('h2')));
    const eps = [dp.openEndpoint('h1')!, dp.openEndpoint('h1')!, dp.openEndpoint('h2')!];
    t.is(new Set([...eps, a.attach.hostEp, b.attach.hostEp, c.attach.hostEp]).size, 6, 'endpoint ids are node-unique');

    // The host's view of the pool: the same memory (what a host maps from the inherited fd).
    const pool = Pool.attach(mapFd(a.fds[0]!, a.attach.poolBytes));
    if (pool._tag === 'Left') throw pool.left;
    for (let i = 0; i < 5; i++) t.is(pool.right.alloc(eps[0]!, 1000)._tag, 'Right');
    t.is(dp.status().pools['r']!.bytesUsed, 5 * 1024);
    dp.closeEndpoints([eps[0]!]);
    t.is(dp.status().pools['r']!.bytesUsed, 0);
    t.deepEqual(dp.status().reclaimed, { buffers: 5, bytes: 5 * 1024 });
    t.true(sent.some((m) => (m as { t: string }).t === 'dp-gone' && (m as { endpoints: number[] }).endpoints.includes(eps[0]!)), "the realm's hosts hear of it");
    // A clean exit with nothing live in the pool skips the scan, and still tells the hosts.
    const before = sent.length;
    dp.closeEndpoints([eps[1]!]);
    t.deepEqual(dp.status().reclaimed, { buffers: 5, bytes: 5 * 1024 });
    t.deepEqual(sent.slice(before).filter((m) => (m as { t: string }).t === 'dp-gone'), [{ t: 'dp-gone', endpoints: [eps[1]] }, { t: 'dp-gone', endpoints: [eps[1]] }]);

    dp.hostGone('h3');
    t.is(dp.status().pools['other'], undefined, "a realm's last host gone frees its pool");
    dp.hostGone('h1');
    t.truthy(dp.status().pools['r'], 'h2 still holds it');
    dp.hostGone('h2');
    t.deepEqual(dp.status().pools, {});
    t.is(dp.status().endpoints, 0);
  } finally {
    dp.close();
  }
});
