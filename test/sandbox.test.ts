import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostCgroups } from '../src/node/sandbox/cgroups.js';
import { REALM_ID_FIRST, RealmIds } from '../src/node/sandbox/realm-ids.js';
import { isolationStatus, SANDBOX_BINARY } from '../src/node/sandbox/probe.js';

// The exec wrapper on its own (src/native/sandbox/sigma-sandbox.c), with small programs where Node has
// no API for the attack (raw, packet and netlink sockets) or would be heavy (a fork bomb).
const ready = isolationStatus().sandboxed;
const serial = ready ? test.serial : test.serial.skip;
const UID = 265_000; // a realm uid no test cluster allocates
const LOADER = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'].filter(existsSync).map((p) => realpathSync(p));
const SYSTEM = ['--rw', '/dev/null', '--ro', '/usr/lib', '--ro', '/lib', '--ro', '/etc/ld.so.cache', '--ro', '/proc', ...LOADER.flatMap((l) => ['--rx', l])];

const sandboxed = (policy: string[], program: string, args: string[], stdio: Array<'pipe' | 'ignore' | number> = ['ignore', 'pipe', 'pipe']) =>
  spawnSync(SANDBOX_BINARY, ['--uid', String(UID), '--gid', String(UID), ...SYSTEM, ...policy, '--rx', realpathSync(program), '--', program, ...args], { encoding: 'utf8', stdio });

serial('sandbox - fds above the kept ones are closed before the program runs', (t) => {
  const stray = openSync('/dev/null', 'r');
  const r = sandboxed(['--keep-fds', '3'], '/bin/sh', ['-c', 'echo /proc/self/fd/*'], ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', stray]);
  t.is(r.status, 0, r.stderr);
  const fds = r.stdout.trim().split(' ').map((p) => Number(p.split('/').pop()));
  t.true(fds.every((fd) => fd <= 3), `only 0-2 and the shell's own directory fd: ${r.stdout}`);
});

serial('sandbox - a fork bomb stops at the pids limit', (t) => {
  const cg = new HostCgroups(`sandbox-test-${process.pid}`).create('bomb', { memMb: 256, mcpu: 100, pidsMax: 16 });
  if (cg === undefined) return t.fail('no cgroups here, though the wrapper works');
  try {
    const bomb = 'i=0; while [ $i -lt 60 ]; do /usr/bin/sleep 2 & i=$((i+1)); echo $i; done; wait; echo done';
    const r = sandboxed([...cg.procsFiles.flatMap((f) => ['--cgroup-procs', f]), '--rx', realpathSync('/usr/bin/sleep')], '/bin/sh', ['-c', bomb]);
    const started = r.stdout.trim().split('\n').filter((l) => /^\d+$/.test(l)).length;
    t.regex(r.stderr, /fork/i, 'a fork beyond the limit fails');
    t.false(r.stdout.includes('done'));
    t.true(started < 16, `the shell and its children stay within 16: ${started} children started`);
  } finally {
    cg.remove();
  }
});

// Node has no API for raw, packet or netlink sockets: python3 (which node-gyp needs anyway) makes them.
const python = '/usr/bin/python3';
(ready && existsSync(python) ? test.serial : test.serial.skip)('sandbox - raw, packet, netlink, UDP and MPTCP sockets are refused, also with garbage above 32 bits; TCP and unix sockets are not', (t) => {  const script = `
import socket
for name, args in [("packet", (socket.AF_PACKET, socket.SOCK_RAW, 0)), ("netlink", (socket.AF_NETLINK, socket.SOCK_RAW, 0)), ("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)), ("udp", (socket.AF_INET, socket.SOCK_DGRAM, 0)), ("udp6", (socket.AF_INET6, socket.SOCK_DGRAM, 0)), ("tcp", (socket.AF_INET, socket.SOCK_STREAM, 0)), ("unix", (socket.AF_UNIX, socket.SOCK_STREAM, 0))]:
    try:
        socket.socket(*args).close(); print(name, "ok")
    except OSError as e:
        print(name, e.errno)
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close(); print("mptcp", "ok")
except OSError as e:
    print("mptcp", e.errno)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(41, ctypes.c_long(0x100000002), ctypes.c_long(socket.SOCK_DGRAM), ctypes.c_long(0))
print("udp-high-bits", "ok" if fd >= 0 else ctypes.get_errno())
`;
  const r = sandboxed(['--ro', '/usr/local/lib'], python, ['-c', script]);
  t.is(r.status, 0, r.stderr);
  const got = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ')));
  t.deepEqual(got, { packet: '1', netlink: '1', raw: '1', udp: '1', udp6: '1', tcp: 'ok', unix: 'ok', mptcp: '1', 'udp-high-bits': '1' }, 'MPTCP would slip past Landlock, a family with high bits past a 64-bit compare');
});

serial('sandbox - bad policies are refused before anything runs, with their own exit codes', (t) => {
  const run = (args: string[]) => spawnSync(SANDBOX_BINARY, args, { encoding: 'utf8' });
  t.is(run(['--uid', '0', '--gid', '0', '--', '/bin/true']).status, 120, 'root is not a realm');
  t.is(run(['--uid', '5']).status, 120);
  t.is(run(['--uid', String(UID), '--gid', String(UID), '--bogus', 'x', '--', '/bin/true']).status, 120);
  t.is(run(['--uid', String(UID), '--gid', String(UID), '--scratch', '/tmp', '--', '/bin/true']).status, 120, 'a scratch without its size');
  t.is(run(['--uid', String(UID), '--gid', String(UID), '--scratch-mb', '4', '--', '/bin/true']).status, 120, 'a size without its scratch');
  const noRx = run(['--uid', String(UID), '--gid', String(UID), ...SYSTEM, '--', '/bin/true']);
  t.is(noRx.status, 125, 'a program without execute permission is never run unconfined');
  t.regex(noRx.stderr, /execv/);
});

serial('sandbox - a host cgroup carries its limits (v1 or v2) and is removed', (t) => {
  const cgroups = new HostCgroups(`sandbox-test-${process.pid}`);
  const cg = cgroups.create('limits', { memMb: 300, mcpu: 500, pidsMax: 77 });
  if (cg === undefined) return t.fail('no cgroups');
  const dir = (f: string) => f.slice(0, f.lastIndexOf('/'));
  const files = cg.procsFiles.map(dir);
  const read = (name: string) => files.map((d) => join(d, name)).filter(existsSync).map((f) => readFileSync(f, 'utf8').trim());
  t.deepEqual(read(cgroups.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'), [String(300 * 2 ** 20)]);
  t.deepEqual(read('pids.max'), ['77']);
  t.deepEqual(read('cpu.idle'), ['0'], 'an LC group is not idle');
  const be = cgroups.create('best-effort', { memMb: 300, mcpu: 50, pidsMax: 77, idle: true })!;
  t.deepEqual(be.procsFiles.map(dir).map((d) => join(d, 'cpu.idle')).filter(existsSync).map((f) => readFileSync(f, 'utf8').trim()), ['1'], 'a BE group runs idle');
  be.remove();
  cg.remove();
  t.true(files.every((d) => !existsSync(d)));
  for (const c of ['memory', 'cpu', 'pids']) for (const d of [`/sys/fs/cgroup/${c}/sigma/sandbox-test-${process.pid}`]) if (existsSync(d)) rmdirSync(d);
});

serial('sandbox - node processes of one name starting together remove the stale groups of a dead one without tripping over each other', async (t) => {
  const node = `stale-test-${process.pid}`;
  const dead = spawnSync('true').pid!; // a pid that has exited
  const cgroups = new HostCgroups(`${node}-probe`);
  if (cgroups.version === undefined) return t.fail('no cgroups');
  const bases = cgroups.version === 2 ? ['/sys/fs/cgroup/sigma'] : ['memory', 'cpu', 'pids'].map((c) => `/sys/fs/cgroup/${c}/sigma`);
  for (const b of bases) for (let i = 0; i < 100; i++) mkdirSync(join(b, `${node}.${dead}`, `h${i}`), { recursive: true });
  const starts = Array.from({ length: 4 }, () =>
    new Promise<number | null>((res) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', `import { HostCgroups } from ${JSON.stringify(new URL('../src/node/sandbox/cgroups.js', import.meta.url).href)}; new HostCgroups(${JSON.stringify(node)});`], { stdio: 'ignore' });
      c.on('exit', res);
    }),
  );
  t.deepEqual(await Promise.all(starts), [0, 0, 0, 0], 'every node process starts');
  t.true(bases.every((b) => !existsSync(join(b, `${node}.${dead}`))), 'the stale groups are gone');
});

test('sandbox - realm ids: one uid per realm, the same after a restart and from another node process sharing the data directory', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-realm-ids-'));
  try {
    const node1 = new RealmIds(dir);
    const node2 = new RealmIds(dir); // another node process of the same cluster on this machine
    const a = node1.idOf('alpha');
    const b = node2.idOf('beta');
    t.not(a, b, 'two realms never share a uid, whichever node allocated them');
    t.is(node2.idOf('alpha'), a, "a realm's uid is the same on every node");
    t.is(new RealmIds(dir).idOf('beta'), b, 'and after a restart');
    t.true(a >= REALM_ID_FIRST && b >= REALM_ID_FIRST);
    const taken = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => Number(l.split(':')[2]));
    t.false(taken.includes(a) || taken.includes(b), 'no id a system user has');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sandbox - realm ids are claimed machine-wide: two clusters never share a uid; a gone cluster gives its uids back', (t) => {
  const claims = mkdtempSync(join(tmpdir(), 'sigma-claims-'));
  const [one, two] = [mkdtempSync(join(tmpdir(), 'sigma-cluster-a-')), mkdtempSync(join(tmpdir(), 'sigma-cluster-b-'))];
  try {
    const a = new RealmIds(one, claims).idOf('default');
    const b = new RealmIds(two, claims).idOf('default');
    t.not(a, b, "the same realm name in two clusters: two uids (one could read the other's files)");
    t.is(new RealmIds(one, claims).idOf('default'), a, 'each keeps its own');
    rmSync(one, { recursive: true, force: true });
    const three = mkdtempSync(join(tmpdir(), 'sigma-cluster-c-'));
    t.is(new RealmIds(three, claims).idOf('tenant'), a, "a removed cluster's uid is taken back");
    t.is(new RealmIds(two, claims).idOf('default'), b);
    rmSync(three, { recursive: true, force: true });
  } finally {
    for (const d of [claims, one, two]) rmSync(d, { recursive: true, force: true });
  }
});
