import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { bpf, NativeError, nativeStatus } from './index.js';

/** Mirrors bpf/sigma_datapath.h (checked against the header by test/bpf.test.ts). */
export const BPF_CONST = {
  DESC_SIZE: 32,
  HUB_EP: 1,
  SYSTEM_REALM: 0,
  F_REJECTED: 0x80000000,
  R_NO_IDENTITY: 1 << 24,
  R_UNKNOWN_DST: 1 << 25,
  R_CROSS_REALM: 1 << 26,
} as const;

export const DATAPATH_OBJECT = fileURLToPath(new URL('../../../build/bpf/sigma_datapath.bpf.o', import.meta.url));

const u32 = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
  return b;
};

function socketFd(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new NativeError('the socket has no file descriptor (not connected yet, or not a TCP socket)', 'EBADF');
  return fd;
}

/** Whether the BPF data path can run here, and why not. */
export function bpfStatus(): { available: boolean; reason?: string } {
  const n = nativeStatus();
  if (!n.available) return n;
  if (!existsSync(DATAPATH_OBJECT)) return { available: false, reason: `${DATAPATH_OBJECT} is not built; run \`npm run build\`` };
  if (process.getuid?.() !== 0) return { available: false, reason: 'BPF needs root (unprivileged BPF is off on this kernel); the userspace hub is used instead' };
  return { available: true };
}

/**
 * The kernel half of the data path: the sk_msg verdict attached to the SOCKHASH, and the maps the node
 * manager fills when it registers an endpoint's socket: identity (SK_STORAGE, by fd), the endpoint's
 * realm, exports across realms, and per-CPU metrics.
 */
export class BpfDataPath {
  readonly #handle: number;
  readonly #prog: number;
  readonly #maps: { sock: number; identity: number; epInfo: number; exports: number; metrics: number };
  #closed = false;

  private constructor(path: string) {
    this.#handle = bpf.load(path);
    try {
      this.#prog = bpf.progFd(this.#handle, 'sigma_verdict');
      this.#maps = {
        sock: bpf.mapFd(this.#handle, 'sock_by_ep'),
        identity: bpf.mapFd(this.#handle, 'identity'),
        epInfo: bpf.mapFd(this.#handle, 'ep_info'),
        exports: bpf.mapFd(this.#handle, 'exports'),
        metrics: bpf.mapFd(this.#handle, 'metrics'),
      };
      bpf.attachSkMsg(this.#prog, this.#maps.sock);
    } catch (e) {
      bpf.close(this.#handle);
      throw e;
    }
  }

  /** Loads and attaches; throws NativeError (EPERM when not root) — callers fall back to the hub. */
  static load(path = DATAPATH_OBJECT): BpfDataPath {
    return new BpfDataPath(path);
  }

  /** Registers a connected TCP socket as `endpoint` of `realm` (realm 0: the system hub). */
  register(sock: Socket, realm: number, endpoint: number): void {
    const fd = socketFd(sock);
    bpf.update(this.#maps.identity, u32(fd), u32(realm, endpoint));
    bpf.update(this.#maps.epInfo, u32(endpoint), u32(realm, 0));
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(BigInt(fd));
    bpf.update(this.#maps.sock, u32(endpoint), v);
  }

  /** Stops routing to `endpoint` (its realm entry goes first, so nothing is redirected to a gap). */
  unregister(endpoint: number): void {
    bpf.delete(this.#maps.epInfo, u32(endpoint));
    bpf.delete(this.#maps.sock, u32(endpoint));
  }

  exportTo(srcRealm: number, dstEndpoint: number): void {
    bpf.update(this.#maps.exports, u32(srcRealm, dstEndpoint), u32(1));
  }

  unexport(srcRealm: number, dstEndpoint: number): void {
    bpf.delete(this.#maps.exports, u32(srcRealm, dstEndpoint));
  }

  /** Messages, bytes and rejects sent by `endpoint`, summed over CPUs. */
  metrics(endpoint: number): { msgs: number; bytes: number; rejects: number } {
    const cpus = bpf.possibleCpus();
    const raw = bpf.lookup(this.#maps.metrics, u32(endpoint), 24 * cpus);
    const out = { msgs: 0, bytes: 0, rejects: 0 };
    if (raw === null) return out;
    for (let c = 0; c < cpus; c++) {
      out.msgs += Number(raw.readBigUInt64LE(24 * c));
      out.bytes += Number(raw.readBigUInt64LE(24 * c + 8));
      out.rejects += Number(raw.readBigUInt64LE(24 * c + 16));
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      bpf.detachSkMsg(this.#prog, this.#maps.sock);
    } finally {
      bpf.close(this.#handle);
    }
  }
}
