/**
 * The seam for the node-to-node channel (built elsewhere, src/datapath/remote*.ts). Today a target on
 * another node fails with CrossNodeTargetError (src/proc/data.ts) where ProcData resolves it; when a
 * channel exists, the node manager gives one to its DataPathPort and hosts hand non-local descriptors to
 * it (one copy into the remote realm's pool, the same credit and ownership rules).
 */
export interface RemoteChannel {
  /** Copies `payload` to `endpoint` on `node`; rejects with a typed error (unreachable, no credit, ...). */
  send(node: string, endpoint: number, src: number, payload: Uint8Array, requestId: bigint): Promise<void>;
  close(): void;
}
