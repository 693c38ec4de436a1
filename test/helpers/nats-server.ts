import { connectBus } from '../../src/nats/real.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import type { Bus } from '../../src/nats/types.js';
import { virtualPorts, type VirtualPorts } from '../../src/ports/index.js';
import { SimNats, type SimNatsOptions } from '../../src/sim/nats.js';

/**
 * The two NATS worlds the contract runs in: a real nats-server (one per test file, JetStream on,
 * free port) and the simulated NATS on virtual time. Test code is the same for both: it awaits
 * port calls and sleeps with `w.sleep`; in the simulated world an autopilot keeps virtual time
 * moving (1 ms per turn of the real event loop) so awaited calls complete.
 */
export interface NatsWorld {
  kind: 'real' | 'sim';
  /** Fresh connections with these client names. */
  clients(...names: string[]): Promise<Bus[]>;
  /** Waits `ms` of the world's time. */
  sleep(ms: number): Promise<void>;
  stop(): Promise<void>;
}

let shared: Promise<NatsServer> | undefined;

/** One real server for the whole test file; stop it in test.after.always with stopSharedServer. */
export function sharedServer(): Promise<NatsServer> {
  shared ??= startNatsServer();
  return shared;
}

export async function stopSharedServer(): Promise<void> {
  if (shared !== undefined) await (await shared).stop();
}

export async function realWorld(): Promise<NatsWorld> {
  const server = await sharedServer();
  const open: Bus[] = [];
  return {
    kind: 'real',
    async clients(...names) {
      const buses = await Promise.all(names.map((name) => connectBus({ servers: [server.url], name })));
      open.push(...buses);
      return buses;
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async stop() {
      await Promise.all(open.map((b) => b.close()));
    },
  };
}

export interface SimWorld extends NatsWorld {
  sim: SimNats;
  ports: VirtualPorts;
}

export function simWorld(seed = 1, options: SimNatsOptions = { latencyMs: 1 }): SimWorld {
  const ports = virtualPorts(seed);
  const sim = new SimNats(ports, options);
  let on = true;
  const autopilot = (async () => {
    while (on) await ports.time.advance(1);
  })();
  return {
    kind: 'sim',
    sim,
    ports,
    async clients(...names) {
      return names.map((n) => sim.connect(n));
    },
    async sleep(ms) {
      const until = ports.time.nowMs() + ms;
      while (ports.time.nowMs() < until) await new Promise((r) => setImmediate(r));
    },
    async stop() {
      on = false;
      await autopilot;
    },
  };
}
