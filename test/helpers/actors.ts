import { pino } from 'pino';
import { createSystem, type ActorSystem, type SystemEvent, type SystemOptions } from '../../src/actors/index.js';
import { virtualPorts, type VirtualPorts } from '../../src/ports/index.js';

export const silent = pino({ level: 'silent' });

/** A system on virtual time with a seed, recording every lifecycle event. */
export function virtualSystem(seed = 1, options: SystemOptions = {}): { system: ActorSystem; ports: VirtualPorts; events: SystemEvent[] } {
  const ports = virtualPorts(seed);
  const events: SystemEvent[] = [];
  const system = createSystem({ logger: silent, ports, onEvent: (e) => events.push(e), ...options });
  return { system, ports, events };
}

export function realSystem(options: SystemOptions = {}): ActorSystem {
  return createSystem({ logger: silent, ...options });
}

/** Resolves after pending microtasks and one macrotask turn. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function eventually(cond: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error('condition never became true');
}
