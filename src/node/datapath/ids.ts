/**
 * Cluster-unique endpoint ids. A pool buffer's owner is an endpoint id, and a descriptor that crosses to
 * another node keeps its source id (the receiving node allocates the copy in its sender's name), so two
 * nodes must never hand out the same id. Rather than carry (node, endpoint) pairs on the wire (the
 * descriptor, the kernel program and the request id all hold 31-bit ids), each node owns a range: its
 * node index in the high bits, a node-local counter in the low bits. A node then tells a remote id from
 * a local one by arithmetic, with no table, and the BPF verdict needs no change.
 *
 *   bits 20..29  node index, 1..NODE_INDEX_MAX (0: a node running alone, the old node-unique ids)
 *   bits  0..19  node-local id, 2..EP_LOCAL_MAX (1 is the hub's, HUB_EP, on every node)
 *
 * The index comes from the node's config (the launcher numbers nodes in config order) or, for a node
 * started by hand, from a hash of its id; a peer whose heartbeat claims an index already taken is not
 * dialled (logged), so a collision costs reachability of that node, never a mixed-up buffer.
 */
import { EP_NODE_SHIFT } from '../../datapath/endpoint-ids.js';

export { EP_NODE_SHIFT, nodeIndexOf } from '../../datapath/endpoint-ids.js';
export const EP_LOCAL_MAX = (1 << EP_NODE_SHIFT) - 1;
export const NODE_INDEX_MAX = 1023;

/** The id range of node `index`: ids in [first, last]. */
export function endpointRange(index: number): { first: number; last: number } {
  if (!Number.isInteger(index) || index < 0 || index > NODE_INDEX_MAX) throw new RangeError(`node index ${index} is outside [0, ${NODE_INDEX_MAX}]`);
  const base = index << EP_NODE_SHIFT;
  return { first: base + 2, last: base + EP_LOCAL_MAX };
}

/** A node index for a node without one in its config: FNV-1a of its id, folded into [1, NODE_INDEX_MAX]. */
export function defaultNodeIndex(nodeId: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(nodeId, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return (h % NODE_INDEX_MAX) + 1;
}
