export type { Clock, Ports, Random, TimerHandle, Timers } from './types.js';
export { SeededRandom } from './random.js';
export { realClock, realPorts, realRandom, realTimers } from './real.js';
export { VirtualTime, flushMicrotasks, virtualPorts, DEFAULT_RUN_EVENTS_MAX, type VirtualPorts } from './virtual.js';
