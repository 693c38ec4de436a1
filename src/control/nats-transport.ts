import type { Transport } from '../actors/index.js';
import type { Bus, Subscription } from '../nats/types.js';
import { ACTOR } from './protocol/index.js';

/**
 * The actor kernel's Transport over NATS: one subject per actor system. NATS keeps per-connection
 * order, which gives the kernel's per-sender FIFO across processes.
 */
export function natsTransport(bus: Bus): Transport {
  let sub: Subscription | undefined;
  return {
    bind(address, onFrame) {
      sub = bus.subscribe(ACTOR.subject(address));
      const s = sub;
      void (async () => {
        for await (const m of s) onFrame(m.data);
      })();
    },
    send(address, frame) {
      bus.publish(ACTOR.subject(address), frame);
    },
    async close() {
      sub?.unsubscribe();
    },
  };
}
