import test from 'ava';
import { closeFd, mapFd, memfdCreate, NativeError, nativeStatus } from '../src/native/index.js';

const available = nativeStatus().available;
const maybe = available ? test : test.skip;

test('native - status says whether the addon loaded, and why not', (t) => {
  const s = nativeStatus();
  t.is(typeof s.available, 'boolean');
  if (!s.available) t.regex(s.reason ?? '', /addon/);
  else t.is(s.reason, undefined);
});

maybe('native - two mappings of one memfd share their bytes (real shared memory)', (t) => {
  const size = 1 << 20;
  const fd = memfdCreate(size, 'native-test');
  const a = new Uint32Array(mapFd(fd, size));
  const b = new Uint32Array(mapFd(fd, size));
  a[0] = 0xdeadbeef;
  a[a.length - 1] = 42;
  t.is(b[0], 0xdeadbeef);
  t.is(b[b.length - 1], 42);
  Atomics.add(b, 1, 5);
  t.is(Atomics.load(a, 1), 5);
  closeFd(fd); // the mappings outlive the fd, as mmap promises
  t.is(a[0], 0xdeadbeef);
});

maybe('native - kernel errors come back typed, with errno and code, never a crash', (t) => {
  const e = t.throws(() => mapFd(987_654, 4096), { instanceOf: NativeError });
  t.is(e?.code, 'EBADF');
  t.is(e?.syscall, 'mmap');
  t.is(typeof e?.errno, 'number');
  const c = t.throws(() => closeFd(987_654), { instanceOf: NativeError });
  t.is(c?.code, 'EBADF');
  t.throws(() => memfdCreate(0), { instanceOf: TypeError });
  t.throws(() => memfdCreate(1.5), { instanceOf: TypeError });
  t.throws(() => mapFd(1, -1), { instanceOf: TypeError });
});
