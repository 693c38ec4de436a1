import type { CallOptions } from '../proc/data.js';

/**
 * The seam for the node-to-node channel (built elsewhere, src/datapath/remote*.ts). ProcData hands every
 * send / call / forward whose target lives on another node (its names record says so, or the caller
 * named the node) to a RemoteChannel when it has one; without one the caller gets CrossNodeTargetError.
 * A channel copies the payload once into the remote realm's pool and applies the same credit and
 * ownership rules there; its failures are typed errors like the local path's.
 */
export interface RemoteChannel {
  /** One-way to `endpoint` on `node`, on behalf of local endpoint `src`. */
  send(node: string, endpoint: number, src: number, payload: Uint8Array, options: CallOptions): Promise<void>;
  /** Request and response; resolves with a copy of the answer. */
  call(node: string, endpoint: number, src: number, payload: Uint8Array, options: CallOptions): Promise<Uint8Array>;
}
