import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * The native addon (src/native/*.cc), typed. Built by scripts/build-native.mjs (the bootstrap runs it)
 * with node-gyp next to its sources. Importing this module never throws: when the addon is missing,
 * nativeStatus() says why and every function throws a NativeError naming the fix, so callers can fall
 * back to the userspace data path. This file binds to the real world (kernel, files): no ports here.
 */

/** A kernel error, a bad argument (EINVAL), or the addon being unavailable (ENOSYS, syscall 'dlopen'). */
export class NativeError extends Error {
  readonly type = 'native';
  override readonly name = 'NativeError';
  constructor(
    message: string,
    /** The errno name, e.g. 'EPERM'. */
    readonly code: string,
    readonly errno: number,
    /** The failing system or library call, or the addon function for argument errors. */
    readonly syscall: string,
  ) {
    super(message);
  }
}

export interface NativeStatus {
  available: boolean;
  reason?: string;
}

/** What the kernel says a map is (bpf_map_info). */
export interface MapInfo {
  type: number;
  keyBytes: number;
  valueBytes: number;
  entriesMax: number;
  flags: number;
  id: number;
  name: string;
}

export type MapKind = 'hash' | 'array' | 'percpu_hash' | 'percpu_array' | 'sockhash';

/** bpf_map_update_elem flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

interface Addon {
  memfdCreate(name: string, sizeBytes: number): number;
  mapFd(fd: number, sizeBytes: number): ArrayBuffer;
  unmap(buffer: ArrayBuffer): boolean;
  closeFd(fd: number): void;
  pidfdGetfd(pid: number, fd: number): number;
  schedYield(): void;
  cpuAffinity(): number[];
  setCpuAffinity(cpus: number[]): void;
  currentCpu(): number;
  sendBytes(fd: number, bytes: Uint8Array): number;
  objectLoad(path: string): number;
  objectClose(handle: number): boolean;
  objectMapFd(handle: number, name: string): number;
  objectProgFd(handle: number, name: string): number;
  attachSkMsg(progFd: number, mapFd: number): void;
  detachSkMsg(progFd: number, mapFd: number): void;
  pin(fd: number, path: string): void;
  pinned(path: string): number;
  unpin(path: string): boolean;
  isBpffs(path: string): boolean;
  mountBpffs(path: string): boolean;
  possibleCpus(): number;
  headerConstants(): Record<string, number>;
  mapCreate(kind: MapKind, keyBytes: number, valueBytes: number, entriesMax: number, name: string): number;
  mapInfo(fd: number): MapInfo;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null): Buffer | null;
  sockMapUpdate(fd: number, key: Buffer, socketFd: number, flags: number): void;
  skStorageUpdate(fd: number, socketFd: number, value: Buffer, flags: number): void;
  skStorageLookup(fd: number, socketFd: number): Buffer | null;
  skStorageDelete(fd: number, socketFd: number): boolean;
}

// dist/src/native/index.js -> <root>/src/native/build/Release: the build stays next to its sources.
const ROOT = new URL('../../../', import.meta.url);
export const ADDON_PATH = fileURLToPath(new URL('src/native/build/Release/sigma_native.node', ROOT));
/** The data path's BPF object, compiled by scripts/build-native.mjs. */
export const DATAPATH_OBJECT_PATH = fileURLToPath(new URL('build/bpf/sigma_datapath.bpf.o', ROOT));
export const BPFFS_PATH = '/sys/fs/bpf';

const loaded = ((): { addon?: Addon; reason?: string } => {
  if (!existsSync(ADDON_PATH)) return { reason: `the native addon is not built (${ADDON_PATH} is missing); run \`npm run build\`` };
  try {
    return { addon: createRequire(import.meta.url)(ADDON_PATH) as Addon };
  } catch (e) {
    return { reason: `the native addon failed to load (${(e as Error).message}); rebuild it with \`npm run build\`` };
  }
})();

export function nativeStatus(): NativeStatus {
  return loaded.addon === undefined ? { available: false, reason: loaded.reason ?? 'unknown' } : { available: true };
}

/** Runs one addon call, turning its errors into NativeError. */
function call<T>(fn: (a: Addon) => T): T {
  const addon = loaded.addon;
  if (addon === undefined) throw new NativeError(`native addon unavailable: ${loaded.reason}`, 'ENOSYS', constants.errno.ENOSYS, 'dlopen');
  try {
    return fn(addon);
  } catch (e) {
    const x = e as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
    if (typeof x.code === 'string' && typeof x.errno === 'number' && typeof x.syscall === 'string') throw new NativeError(x.message, x.code, x.errno, x.syscall);
    throw new NativeError(`native call failed: ${x.message}`, 'EINVAL', constants.errno.EINVAL, 'napi');
  }
}

// ---- memory -----------------------------------------------------------------------------------------

/** An anonymous shared-memory file of `sizeBytes` (close-on-exec: hand it to children explicitly). */
export function memfdCreate(sizeBytes: number, name = 'sigma-pool'): number {
  return call((a) => a.memfdCreate(name, sizeBytes));
}

/**
 * Maps `fd` shared and read-write as an external ArrayBuffer (not a SharedArrayBuffer: no Atomics.wait,
 * but Atomics operations are real atomics across processes). Unmapped by unmap() or, failing that, when
 * the buffer is garbage collected.
 */
export function mapFd(fd: number, sizeBytes: number): ArrayBuffer {
  return call((a) => a.mapFd(fd, sizeBytes));
}

/**
 * Unmaps now. The buffer is detached first: its byteLength and every view's length become 0, reads give
 * undefined and writes are ignored — it can never reach the unmapped pages. False if already released.
 */
export function unmap(buffer: ArrayBuffer): boolean {
  return call((a) => a.unmap(buffer));
}

export function closeFd(fd: number): void {
  call((a) => a.closeFd(fd));
}

/** A duplicate in this process of `fd` of process `pid` (pidfd_getfd; root or ptrace rights). Close it. */
export function pidfdGetfd(pid: number, fd: number): number {
  return call((a) => a.pidfdGetfd(pid, fd));
}

/** sched_yield(2): lets another runnable task on this CPU run now. A no-op without the addon. */
export function schedYield(): void {
  loaded.addon?.schedYield();
}

/** The CPUs this thread may run on (sched_getaffinity), ascending. */
export function cpuAffinity(): number[] {
  return call((a) => a.cpuAffinity());
}

/** Restricts this thread (the main thread, when called from JS there) to `cpus`, moving it now if need be. */
export function setCpuAffinity(cpus: readonly number[]): void {
  call((a) => a.setCpuAffinity([...cpus]));
}

/** The CPU this thread runs on now (sched_getcpu). */
export function currentCpu(): number {
  return call((a) => a.currentCpu());
}

/**
 * Non-blocking send on a socket fd, for the data path's frames (src/datapath/frames.ts); undefined
 * without the addon. The addon's function itself, not wrapped by `call`: it runs per write. It answers
 * the bytes the kernel took or -1 (EAGAIN); other kernel errors throw plain Errors carrying `code` and
 * `errno`.
 */
export interface SocketIo {
  send(fd: number, bytes: Uint8Array): number;
}
export function socketIo(): SocketIo | undefined {
  const a = loaded.addon;
  return a === undefined ? undefined : { send: a.sendBytes };
}

/** The fd of a connected Node TCP socket (Linux: the libuv handle's fd). */
export function socketFd(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new NativeError('the socket has no file descriptor: wait for it to connect (and use a TCP socket, not a pipe)', 'EBADF', constants.errno.EBADF, 'socketFd');
  }
  return fd;
}

// ---- BPF --------------------------------------------------------------------------------------------

/**
 * libbpf and the bpf() syscall by handle and fd; keys and values are little-endian Buffers of exactly
 * the map's sizes (checked against the kernel, EINVAL otherwise). The data path (src/native/bpf.ts) is
 * the intended user. Fds from mapFd/progFd belong to their object: closing it closes them.
 */
export const bpf = {
  load: (path: string = DATAPATH_OBJECT_PATH): number => call((a) => a.objectLoad(path)),
  close: (handle: number): boolean => call((a) => a.objectClose(handle)),
  mapFd: (handle: number, name: string): number => call((a) => a.objectMapFd(handle, name)),
  progFd: (handle: number, name: string): number => call((a) => a.objectProgFd(handle, name)),
  attachSkMsg: (progFd: number, sockhashFd: number): void => call((a) => a.attachSkMsg(progFd, sockhashFd)),
  detachSkMsg: (progFd: number, sockhashFd: number): void => call((a) => a.detachSkMsg(progFd, sockhashFd)),
  pin: (fd: number, path: string): void => call((a) => a.pin(fd, path)),
  /** An fd for a pinned object (close it with closeFd). */
  pinned: (path: string): number => call((a) => a.pinned(path)),
  unpin: (path: string): boolean => call((a) => a.unpin(path)),
  isBpffs: (path: string = BPFFS_PATH): boolean => call((a) => a.isBpffs(path)),
  /** Mounts a bpf filesystem at `path` unless one is there; true when it mounted. */
  mountBpffs: (path: string = BPFFS_PATH): boolean => call((a) => a.mountBpffs(path)),
  possibleCpus: (): number => call((a) => a.possibleCpus()),
  /** bpf/sigma_datapath.h's constants as the C compiler evaluated them. */
  headerConstants: (): Record<string, number> => call((a) => a.headerConstants()),
  /** A map of its own (close the fd with closeFd). */
  createMap: (kind: MapKind, keyBytes: number, valueBytes: number, entriesMax: number, name: string): number =>
    call((a) => a.mapCreate(kind, keyBytes, valueBytes, entriesMax, name)),
  mapInfo: (fd: number): MapInfo => call((a) => a.mapInfo(fd)),
  update: (fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void => call((a) => a.mapUpdate(fd, key, value, flags)),
  /** The value, or null when absent. Per-CPU maps: every CPU's value back to back, see lookupPerCpu. */
  lookup: (fd: number, key: Buffer): Buffer | null => call((a) => a.mapLookup(fd, key)),
  /** One value per possible CPU (each valueBytes long), or null when absent. Pass valueBytes if known (saves a syscall). */
  lookupPerCpu: (fd: number, key: Buffer, valueBytes?: number): Buffer[] | null => {
    const info = valueBytes === undefined ? bpf.mapInfo(fd) : { valueBytes };
    const raw = bpf.lookup(fd, key);
    if (raw === null) return null;
    const stride = (info.valueBytes + 7) & ~7;
    const cpus = raw.length / stride;
    return Array.from({ length: cpus }, (_, c) => raw.subarray(c * stride, c * stride + info.valueBytes));
  },
  /** False when there was no such entry. */
  delete: (fd: number, key: Buffer): boolean => call((a) => a.mapDelete(fd, key)),
  /** Every key, in the kernel's order (bounded by the map's entriesMax). */
  keys: (fd: number): Buffer[] => {
    const max = bpf.mapInfo(fd).entriesMax;
    const out: Buffer[] = [];
    for (let k = call((a) => a.mapNextKey(fd, null)); k !== null && out.length < max; k = call((a) => a.mapNextKey(fd, k))) out.push(k);
    return out;
  },
  /** Puts a connected TCP socket into a sockhash under `key`. */
  sockMapUpdate: (fd: number, key: Buffer, sock: Socket | number, flags = BPF_ANY): void =>
    call((a) => a.sockMapUpdate(fd, key, typeof sock === 'number' ? sock : socketFd(sock), flags)),
  skStorageUpdate: (fd: number, sock: Socket | number, value: Buffer, flags = BPF_ANY): void =>
    call((a) => a.skStorageUpdate(fd, typeof sock === 'number' ? sock : socketFd(sock), value, flags)),
  skStorageLookup: (fd: number, sock: Socket | number): Buffer | null => call((a) => a.skStorageLookup(fd, typeof sock === 'number' ? sock : socketFd(sock))),
  skStorageDelete: (fd: number, sock: Socket | number): boolean => call((a) => a.skStorageDelete(fd, typeof sock === 'number' ? sock : socketFd(sock))),
};

// ---- can BPF run here? -----------------------------------------------------------------------------

export interface BpfStatus extends NativeStatus {
  /** Effective capabilities include CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN (sockhash, sk_msg). */
  privileged: boolean;
  /** A bpf filesystem is mounted at BPFFS_PATH (only needed for pinning). */
  bpffs: boolean;
  objectBuilt: boolean;
}

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0n : BigInt(`0x${m[1]}`);
}

function bpffsMounted(): boolean {
  if (loaded.addon !== undefined) return loaded.addon.isBpffs(BPFFS_PATH);
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === BPFFS_PATH && l.split(' ')[2] === 'bpf');
}

/** Whether the BPF data path can run here, and if not, why (checked without touching the kernel's BPF). */
export function bpfStatus(): BpfStatus {
  const caps = process.platform === 'linux' ? effectiveCaps() : 0n;
  const has = (c: bigint): boolean => ((caps >> c) & 1n) === 1n;
  const privileged = (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN);
  const bpffs = process.platform === 'linux' && bpffsMounted();
  const objectBuilt = existsSync(DATAPATH_OBJECT_PATH);
  const base = { privileged, bpffs, objectBuilt };
  const native = nativeStatus();
  if (!native.available) return { available: false, reason: native.reason ?? 'native addon unavailable', ...base };
  if (!objectBuilt) return { available: false, reason: `the BPF object is not built (${DATAPATH_OBJECT_PATH} is missing); run \`npm run build\``, ...base };
  if (!privileged) {
    return { available: false, reason: 'BPF needs root, or CAP_BPF and CAP_NET_ADMIN (unprivileged BPF is off); the userspace data path is used instead', ...base };
  }
  return { available: true, ...base };
}
