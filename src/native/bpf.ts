import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { ENDPOINTS_MAX, HUB_EP, SYSTEM_REALM } from '../datapath/descriptor.js';
import { BPF_NOEXIST, bpf, DATAPATH_OBJECT_PATH, NativeError, socketFd } from './index.js';

export { bpfStatus, DATAPATH_OBJECT_PATH, type BpfStatus } from './index.js';

/** Endpoint ids are positive and fit the pool's owner field (src/datapath/pool.ts OWNER_MAX). */
const ENDPOINT_MAX = 0x7fff_ffff;
const REALM_MAX = 0xffff_ffff;
const METRICS_BYTES = 24;

export interface EndpointMetrics {
  msgs: number;
  bytes: number;
  rejects: number;
}

const u32 = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeUInt32LE(x, 4 * i));
  return b;
};

function invalid(what: string): NativeError {
  return new NativeError(what, 'EINVAL', constants.errno.EINVAL, 'BpfDataPath');
}

function checkEndpoint(endpoint: number): void {
  if (!Number.isInteger(endpoint) || endpoint < 1 || endpoint > ENDPOINT_MAX) throw invalid(`endpoint ids are integers in [1, ${ENDPOINT_MAX}], got ${endpoint}`);
}

function checkRealm(realm: number): void {
  if (!Number.isInteger(realm) || realm < 0 || realm > REALM_MAX) throw invalid(`realm ids are u32 (0 is the system realm), got ${realm}`);
}

const fdOf = (sock: Socket | number): number => (typeof sock === 'number' ? sock : socketFd(sock));

/**
 * The kernel half of the data path: bpf/sigma_datapath.bpf.o loaded, its sk_msg verdict attached to the
 * SOCKHASH, and the maps the node manager fills when it registers sockets: identity (SK_STORAGE, by fd),
 * each endpoint's realm and carrying socket, exports across realms, and per-CPU metrics.
 *
 * A registered socket is a TCP loopback connection whose peer never reads: whatever it writes is
 * intercepted by the verdict and redirected into the destination socket's receive queue.
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

  /** Loads and attaches. Throws NativeError (EPERM without privileges): callers fall back to the hub. */
  static load(path = DATAPATH_OBJECT_PATH): BpfDataPath {
    return new BpfDataPath(path);
  }

  /**
   * Registers a connected TCP socket as `endpoint` of `realm` (SYSTEM_REALM and HUB_EP for the hub).
   * The identity goes in before the socket enters the SOCKHASH, so its first write is already checked.
   */
  attachSocket(sock: Socket | number, realm: number, endpoint: number): void {
    this.#open();
    checkRealm(realm);
    checkEndpoint(endpoint);
    if (endpoint === HUB_EP && realm !== SYSTEM_REALM) throw invalid(`endpoint ${HUB_EP} is the hub's and belongs to the system realm`);
    const fd = fdOf(sock);
    bpf.skStorageUpdate(this.#maps.identity, fd, u32(realm, endpoint));
    bpf.update(this.#maps.epInfo, u32(endpoint), u32(realm, endpoint));
    bpf.sockMapUpdate(this.#maps.sock, u32(endpoint), fd);
  }

  /**
   * Adds `endpoint` (a proc hosted behind the socket) to an attached socket, in the socket's realm. Only
   * the realm map changes: the kernel redirects to the socket's own SOCKHASH entry, and the receiver
   * demultiplexes on dst.
   */
  addEndpoint(sock: Socket | number, endpoint: number): void {
    this.#open();
    checkEndpoint(endpoint);
    const fd = fdOf(sock);
    const id = bpf.skStorageLookup(this.#maps.identity, fd);
    if (id === null) throw new NativeError(`the socket (fd ${fd}) is not attached; attachSocket() it first`, 'ENOENT', constants.errno.ENOENT, 'BpfDataPath');
    if (bpf.lookup(this.#maps.epInfo, u32(endpoint)) !== null) throw new NativeError(`endpoint ${endpoint} is already registered; remove it first`, 'EEXIST', constants.errno.EEXIST, 'BpfDataPath');
    bpf.update(this.#maps.epInfo, u32(endpoint), u32(id.readUInt32LE(0), id.readUInt32LE(4)), BPF_NOEXIST);
  }

  /**
   * `addEndpoint` for a socket whose fd this process no longer holds (it was handed to a proc host):
   * `ownerEp` is the endpoint the socket was attached as, `realm` its realm.
   */
  addHostedEndpoint(realm: number, ownerEp: number, endpoint: number): void {
    this.#open();
    checkRealm(realm);
    checkEndpoint(ownerEp);
    checkEndpoint(endpoint);
    bpf.update(this.#maps.epInfo, u32(endpoint), u32(realm, ownerEp), BPF_NOEXIST); // EEXIST if registered
  }

  /**
   * Stops routing to `endpoint`: its realm entry goes first, so nothing is redirected into a gap. For a
   * socket's own endpoint this also takes the socket out of the SOCKHASH (its hosted endpoints then get
   * 'dst-gone' until they are removed too).
   */
  removeEndpoint(endpoint: number, options: { hosted?: boolean } = {}): void {
    this.#open();
    bpf.delete(this.#maps.epInfo, u32(endpoint));
    if (options.hosted !== true) bpf.delete(this.#maps.sock, u32(endpoint)); // a hosted endpoint has no socket entry
  }

  /** Makes `dstEndpoint` reachable from (and able to reply to) endpoints of `srcRealm`. */
  exportTo(srcRealm: number, dstEndpoint: number): void {
    this.#open();
    checkRealm(srcRealm);
    checkEndpoint(dstEndpoint);
    bpf.update(this.#maps.exports, u32(srcRealm, dstEndpoint), u32(1));
  }

  unexport(srcRealm: number, dstEndpoint: number): void {
    this.#open();
    bpf.delete(this.#maps.exports, u32(srcRealm, dstEndpoint));
  }

  /** Descriptors, bytes and rejects sent by `endpoint` (0: sockets without identity), summed over CPUs. */
  metrics(endpoint: number): EndpointMetrics {
    this.#open();
    const out = { msgs: 0, bytes: 0, rejects: 0 };
    for (const v of bpf.lookupPerCpu(this.#maps.metrics, u32(endpoint), METRICS_BYTES) ?? []) {
      if (v.length !== METRICS_BYTES) throw invalid(`metrics values are ${v.length} bytes, expected ${METRICS_BYTES}: rebuild bpf/`);
      out.msgs += Number(v.readBigUInt64LE(0));
      out.bytes += Number(v.readBigUInt64LE(8));
      out.rejects += Number(v.readBigUInt64LE(16));
    }
    return out;
  }

  /** Returns `endpoint`'s counters and deletes its row (the endpoint is gone; the map is bounded). */
  takeMetrics(endpoint: number): EndpointMetrics {
    const m = this.metrics(endpoint);
    bpf.delete(this.#maps.metrics, u32(endpoint));
    return m;
  }

  /** Endpoints currently routable (bounded by the map size). */
  endpoints(): number[] {
    this.#open();
    return bpf.keys(this.#maps.epInfo).slice(0, ENDPOINTS_MAX).map((k) => k.readUInt32LE(0));
  }

  /** Detaches and closes; the maps go away with the object (sockets in them are released). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      bpf.detachSkMsg(this.#prog, this.#maps.sock);
    } finally {
      bpf.close(this.#handle);
    }
  }

  #open(): void {
    if (this.#closed) throw new NativeError('the BPF data path is closed', 'EBADF', constants.errno.EBADF, 'BpfDataPath');
  }
}
