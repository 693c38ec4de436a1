import type { ActorRef } from '../actors/index.js';
import { ServiceProc } from '../proc/types.js';

export type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> } | { type: 'crash' };

/** A service proc: `sigma spawn counter --name counter`, then ask it from any process by name. */
export default class Counter extends ServiceProc<CounterMsg> {
  total = 0;
  receive(m: CounterMsg): void {
    if (m.type === 'add') this.total += m.n;
    else if (m.type === 'get') m.replyTo.tell(this.total);
    else throw new Error('crash requested');
  }
}
