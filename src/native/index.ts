import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The native addon (src/native/sigma_native.cc), built by the bootstrap with node-gyp. Importing this
 * module never throws: when the addon is missing, nativeStatus() says why and the functions throw a
 * NativeError naming the fix, so callers can fall back (the userspace data path).
 */

/** A kernel error (errno, code, syscall) or an unavailable addon (code ENOADDON). */
export class NativeError extends Error {
  readonly type = 'native';
  constructor(
    message: string,
    readonly code: string,
    readonly errno?: number,
    readonly syscall?: string,
  ) {
    super(message);
    this.name = 'NativeError';
  }
}

interface Addon {
  memfdCreate(name: string, sizeBytes: number): number;
  mapFd(fd: number, sizeBytes: number): ArrayBuffer;
  closeFd(fd: number): void;
  bpfLoad(path: string): number;
  bpfClose(handle: number): void;
  bpfMapFd(handle: number, name: string): number;
  bpfProgFd(handle: number, name: string): number;
  bpfAttachSkMsg(progFd: number, mapFd: number): void;
  bpfDetachSkMsg(progFd: number, mapFd: number): void;
  bpfMapUpdate(mapFd: number, key: Buffer, value: Buffer, flags: number): void;
  bpfMapLookup(mapFd: number, key: Buffer, valueBytes: number): Buffer | null;
  bpfMapDelete(mapFd: number, key: Buffer): boolean;
  possibleCpus(): number;
}

// dist/src/native/index.js -> src/native/build/Release (the build stays next to its sources).
const ADDON_PATH = fileURLToPath(new URL('../../../src/native/build/Release/sigma_native.node', import.meta.url));

const loaded = ((): { addon?: Addon; reason?: string } => {
  if (!existsSync(ADDON_PATH)) return { reason: `addon not built (${ADDON_PATH} is missing); run \`npm run build\`` };
  try {
    return { addon: createRequire(import.meta.url)(ADDON_PATH) as Addon };
  } catch (e) {
    return { reason: `addon failed to load: ${(e as Error).message}` };
  }
})();

export function nativeStatus(): { available: boolean; reason?: string } {
  return loaded.addon === undefined ? { available: false, reason: loaded.reason! } : { available: true };
}

function call<T>(fn: (a: Addon) => T): T {
  if (loaded.addon === undefined) throw new NativeError(`native addon unavailable: ${loaded.reason}`, 'ENOADDON');
  try {
    return fn(loaded.addon);
  } catch (e) {
    const x = e as Error & { code?: string; errno?: number; syscall?: string };
    if (x instanceof TypeError) throw x;
    throw new NativeError(x.message, x.code ?? 'EUNKNOWN', x.errno, x.syscall);
  }
}

/** An anonymous shared-memory file of `sizeBytes` (close-on-exec; hand it to children explicitly). */
export function memfdCreate(sizeBytes: number, name = 'sigma-pool'): number {
  return call((a) => a.memfdCreate(name, sizeBytes));
}

/** Maps `fd` shared and read-write as an ArrayBuffer; unmapped when the buffer is garbage collected. */
export function mapFd(fd: number, sizeBytes: number): ArrayBuffer {
  return call((a) => a.mapFd(fd, sizeBytes));
}

export function closeFd(fd: number): void {
  call((a) => a.closeFd(fd));
}

// ---- BPF ------------------------------------------------------------------------------------------


/** The raw libbpf calls; the data path (src/native/bpf.ts) is the intended user. */
export const bpf = {
  load: (path: string) => call((a) => a.bpfLoad(path)),
  close: (handle: number) => call((a) => a.bpfClose(handle)),
  mapFd: (handle: number, name: string) => call((a) => a.bpfMapFd(handle, name)),
  progFd: (handle: number, name: string) => call((a) => a.bpfProgFd(handle, name)),
  attachSkMsg: (progFd: number, mapFd: number) => call((a) => a.bpfAttachSkMsg(progFd, mapFd)),
  detachSkMsg: (progFd: number, mapFd: number) => call((a) => a.bpfDetachSkMsg(progFd, mapFd)),
  update: (mapFd: number, key: Buffer, value: Buffer, flags = 0) => call((a) => a.bpfMapUpdate(mapFd, key, value, flags)),
  lookup: (mapFd: number, key: Buffer, valueBytes: number) => call((a) => a.bpfMapLookup(mapFd, key, valueBytes)),
  delete: (mapFd: number, key: Buffer) => call((a) => a.bpfMapDelete(mapFd, key)),
  possibleCpus: () => call((a) => a.possibleCpus()),
};
