import test from 'ava';
import { readFileSync } from 'node:fs';
import { BPF_NOEXIST, bpf, bpfStatus, closeFd, mapFd, memfdCreate, NativeError, nativeStatus, pidfdGetfd, unmap } from '../src/native/index.js';

const native = nativeStatus();
const maybe = native.available ? test : test.skip;
// Map operations need the bpf() syscall with privileges (root in CI).
const privileged = native.available && bpfStatus().privileged;
const maybeRoot = privileged ? test.serial : test.serial.skip;
if (!native.available) console.log(`native tests skipped: ${native.reason}`);
else if (!privileged) console.log('native map tests skipped: they need root (or CAP_BPF and CAP_NET_ADMIN)');

/** How many mappings of memfd `name` this process has (from /proc/self/maps). */
const mappingsOf = (name: string): number => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(`/memfd:${name} `)).length;

/** Runs fn and returns the NativeError it threw (fails the test otherwise). */
function nativeError(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NativeError) return e;
    throw new Error(`expected a NativeError, got ${String(e)}`);
  }
  throw new Error('expected a NativeError, nothing was thrown');
}

test('native - status says whether the addon loaded, and why not', (t) => {
  t.is(typeof native.available, 'boolean');
  if (!native.available) t.regex(native.reason ?? '', /addon/);
  else t.is(native.reason, undefined);
});

maybe('native - two mappings of one memfd share their bytes (real shared memory)', (t) => {
  const size = 1 << 20;
  const fd = memfdCreate(size, 'native-share');
  const a = new Uint32Array(mapFd(fd, size));
  const b = new Uint32Array(mapFd(fd, size));
  a[0] = 0xdeadbeef;
  b[b.length - 1] = 42;
  t.is(b[0], 0xdeadbeef);
  t.is(a[a.length - 1], 42);
  Atomics.add(b, 1, 5);
  t.is(Atomics.load(a, 1), 5);
  closeFd(fd); // the mappings outlive the fd, as mmap promises
  t.is(a[0], 0xdeadbeef);
  unmap(a.buffer as ArrayBuffer);
  unmap(b.buffer as ArrayBuffer);
});

maybe('native - unmap detaches the buffer, removes the mapping now, and is idempotent', (t) => {
  const size = 64 * 1024;
  const fd = memfdCreate(size, 'native-release');
  const keep = mapFd(fd, size);
  const gone = mapFd(fd, size);
  const view = new Uint8Array(gone);
  view[7] = 7;
  t.is(mappingsOf('native-release'), 2);
  t.true(unmap(gone));
  t.is(gone.byteLength, 0, 'detached: JS can no longer reach the pages');
  t.is(view.length, 0);
  t.is(view[7] as number | undefined, undefined);
  t.is(mappingsOf('native-release'), 1, 'the pages are unmapped at once, not at the next GC');
  t.false(unmap(gone), 'a second release is a no-op');
  t.is(new Uint8Array(keep)[7], 7, 'the other mapping is untouched');
  t.true(unmap(keep));
  t.is(mappingsOf('native-release'), 0);
  closeFd(fd);
  const notOurs = nativeError(() => unmap(new ArrayBuffer(8)));
  t.like(notOurs, { code: 'EINVAL', syscall: 'unmap' });
});

maybe('native - kernel errors and bad arguments come back as NativeError with errno and code, never a crash', (t) => {
  const badFd = nativeError(() => mapFd(987_654, 4096));
  t.like(badFd, { name: 'NativeError', code: 'EBADF', errno: 9, syscall: 'mmap' });
  t.regex(badFd.message, /mapping fd 987654/);
  t.like(nativeError(() => closeFd(987_654)), { code: 'EBADF', syscall: 'close' });
  t.like(nativeError(() => memfdCreate(0)), { code: 'EINVAL', errno: 22, syscall: 'memfdCreate' });
  t.like(nativeError(() => memfdCreate(1.5)), { code: 'EINVAL' });
  t.like(nativeError(() => mapFd(1, -1)), { code: 'EINVAL', syscall: 'mapFd' });
  t.like(nativeError(() => mapFd(-3, 4096)), { code: 'EINVAL' });
  t.like(nativeError(() => pidfdGetfd(2 ** 30, 0)), { code: 'ESRCH', syscall: 'pidfd_open' });
  t.like(nativeError(() => bpf.load('/nonexistent/x.bpf.o')), { code: 'ENOENT' });
  t.like(nativeError(() => bpf.mapFd(424_242, 'nope')), { code: 'EINVAL', syscall: 'objectMapFd' });
  t.like(nativeError(() => bpf.lookup(0, Buffer.alloc(4))), { syscall: 'bpf_obj_get_info_by_fd' }, 'stdin is not a map');
});

maybe('native - pidfd_getfd duplicates another process fd (here our own memfd)', (t) => {
  const fd = memfdCreate(4096, 'native-pidfd');
  const a = new Uint8Array(mapFd(fd, 4096));
  a[0] = 99;
  const dup = pidfdGetfd(process.pid, fd);
  t.not(dup, fd);
  const b = new Uint8Array(mapFd(dup, 4096));
  t.is(b[0], 99);
  unmap(a.buffer as ArrayBuffer);
  unmap(b.buffer as ArrayBuffer);
  closeFd(dup);
  closeFd(fd);
});

maybeRoot('native - map operations on a created hash map, with sizes checked against the kernel', (t) => {
  const fd = bpf.createMap('hash', 4, 8, 16, 'sigma_t_hash');
  try {
    t.like(bpf.mapInfo(fd), { type: 1, keyBytes: 4, valueBytes: 8, entriesMax: 16, name: 'sigma_t_hash' });
    const key = (k: number): Buffer => Buffer.from(new Uint32Array([k]).buffer);
    const val = Buffer.from('abcdefgh');
    t.is(bpf.lookup(fd, key(1)), null);
    bpf.update(fd, key(1), val);
    t.deepEqual(bpf.lookup(fd, key(1)), val);
    t.like(nativeError(() => bpf.update(fd, key(1), val, BPF_NOEXIST)), { code: 'EEXIST', syscall: 'bpf_map_update_elem' });
    // A short key or value would make the kernel read past the Buffer: refused before the syscall.
    t.like(nativeError(() => bpf.lookup(fd, Buffer.alloc(2))), { code: 'EINVAL', syscall: 'mapLookup' });
    t.like(nativeError(() => bpf.update(fd, key(2), Buffer.alloc(4))), { code: 'EINVAL', syscall: 'mapUpdate' });
    for (let k = 2; k <= 16; k++) bpf.update(fd, key(k), val);
    t.like(nativeError(() => bpf.update(fd, key(17), val)), { code: 'E2BIG' }, 'a bounded map refuses the 17th entry');
    t.is(bpf.keys(fd).length, 16);
    t.true(bpf.delete(fd, key(1)));
    t.false(bpf.delete(fd, key(1)));
    t.is(bpf.keys(fd).length, 15);
  } finally {
    closeFd(fd);
  }
});

maybeRoot('native - per-CPU lookup gives one value per possible CPU', (t) => {
  const fd = bpf.createMap('percpu_array', 4, 12, 4, 'sigma_t_pcpu');
  try {
    const cpus = bpf.possibleCpus();
    const stride = 16; // 12 rounded up to 8
    const all = Buffer.alloc(stride * cpus);
    for (let c = 0; c < cpus; c++) all.writeUInt32LE(100 + c, c * stride);
    bpf.update(fd, Buffer.alloc(4), all);
    const got = bpf.lookupPerCpu(fd, Buffer.alloc(4));
    t.is(got?.length, cpus);
    t.deepEqual(got?.map((v) => [v.length, v.readUInt32LE(0)]), Array.from({ length: cpus }, (_, c) => [12, 100 + c]));
  } finally {
    closeFd(fd);
  }
});

maybeRoot('native - pin, reopen by path, unpin (bpffs mounted if it was not)', (t) => {
  const mounted = bpf.mountBpffs();
  t.log(mounted ? 'mounted bpffs at /sys/fs/bpf' : 'bpffs was already mounted');
  t.true(bpf.isBpffs());
  const path = `/sys/fs/bpf/sigma-test-${process.pid}`;
  const fd = bpf.createMap('array', 4, 4, 1, 'sigma_t_pin');
  try {
    bpf.pin(fd, path);
    const again = bpf.pinned(path);
    t.is(bpf.mapInfo(again).id, bpf.mapInfo(fd).id);
    closeFd(again);
    t.like(nativeError(() => bpf.pin(fd, path)), { code: 'EEXIST' });
    t.like(nativeError(() => bpf.pin(fd, '/tmp/not-bpffs')), { syscall: 'bpf_obj_pin' });
  } finally {
    t.true(bpf.unpin(path));
    closeFd(fd);
  }
  t.false(bpf.unpin(path));
});
