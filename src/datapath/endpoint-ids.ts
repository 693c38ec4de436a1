/**
 * Which node an endpoint id belongs to: its node index sits in bits 20..29 (the scheme and the ranges
 * nodes allocate from are in src/node/datapath/ids.ts, which re-exports these). Here, below the node, so
 * that an endpoint can tell a destination on another node from one on its own without asking it.
 */
export const EP_NODE_SHIFT = 20;

export function nodeIndexOf(endpoint: number): number {
  return endpoint >>> EP_NODE_SHIFT;
}

/** `a` and `b` belong to different nodes' ranges (index 0, a node running alone, has only local ids). */
export function onOtherNode(a: number, b: number): boolean {
  return nodeIndexOf(a) !== nodeIndexOf(b);
}
