import { Endpoint } from '../../datapath/endpoint.js';
import { decodeFrame, FRAME_BYTES, linkPair, type FrameLink } from '../../datapath/frames.js';
import { Pool } from '../../datapath/pool.js';
import { RemoteChannel, type LocalSide } from '../../datapath/remote.js';
import { realTimers } from '../../ports/index.js';
import { BenchError } from '../harness.js';
import { POOL_A_BYTES, POOL_A_CLASSES, REALM_A } from './datapath-protocol.js';

/**
 * A host process acting as a node of its own for the `remote` transport: a private pool of realm A (not
 * the shared memfd: two nodes share no memory), one endpoint, and a RemoteChannel to the other node. The
 * node manager's routing is reduced to what this needs: every descriptor the endpoint writes is for the
 * other node, and the channel delivers what arrives to the endpoint.
 */
export interface RemoteNode {
  endpoint: Endpoint;
  channel: RemoteChannel;
  close(): Promise<void>;
}

export async function startRemoteNode(nodeId: string, peerNode: string, endpointId: number, realm: string = REALM_A.name): Promise<RemoteNode> {
  const formatted = realm === REALM_A.name ? Pool.format(new ArrayBuffer(POOL_A_BYTES), { classes: POOL_A_CLASSES, largeBytes: 0 }) : Pool.format(new ArrayBuffer(1 << 20));
  if (formatted._tag === 'Left') throw formatted.left;
  const pool = formatted.right;
  const [mine, theirs] = linkPair((fn) => queueMicrotask(fn));
  const local: LocalSide = {
    realmOf: (ep) => (ep === endpointId ? realm : undefined),
    isExportedTo: () => false,
    pool: (r) => (r === realm ? pool : undefined),
    deliver: (frame) => mine.write(frame),
  };
  const channel = await RemoteChannel.listen({ nodeId, local, timers: realTimers });
  const route = (frames: Buffer): void => {
    for (let at = 0; at < frames.length; at += FRAME_BYTES) {
      const d = decodeFrame(frames, at);
      if (d.srcEp !== endpointId) continue;
      void channel.send(peerNode, d, realm).then((r) => {
        // Not expected (the endpoint keeps to its credits; the forger's refusals are the point and
        // counted by the receiving node): a round trip then times out with this said.
        if (r._tag === 'Left' && realm === REALM_A.name) process.stderr.write(`${new BenchError(`remote send failed: ${r.left.message}`).message}\n`);
      });
    }
  };
  (mine as FrameLink).onFrames(route);
  const endpoint = new Endpoint({ id: endpointId, pool, link: theirs, timers: realTimers });
  return {
    endpoint,
    channel,
    close: async () => {
      endpoint.close();
      await channel.close();
    },
  };
}
