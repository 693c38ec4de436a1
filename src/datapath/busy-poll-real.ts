import type { Logger } from 'pino';
import { cpuAffinity, schedYield, setCpuAffinity } from '../native/index.js';
import type { BusyPollPorts } from './busy-poll.js';

/** The busy poll bound to the real world: this process's clock, libuv's check phase, sched_yield. */
export const realBusyPollPorts: BusyPollPorts = {
  nowMs: () => performance.now(),
  immediate: (fn) => void setImmediate(fn),
  relax: schedYield,
};

/**
 * Pinning to `home` and back to the CPUs this host was started with, for the busy poll; nothing when there
 * is no home, no addon, or the home is not among those CPUs. A kernel refusal (the CPU went offline, a
 * cpuset shrank) turns pinning off for good instead of failing traffic.
 */
export function homePin(home: number | undefined, log: Logger): Pick<BusyPollPorts, 'pin' | 'unpin' | 'later'> {
  if (home === undefined) return {};
  let all: number[];
  try {
    all = cpuAffinity();
  } catch {
    return {};
  }
  if (all.length < 2 || !all.includes(home)) return {};
  let broken = false;
  const set = (cpus: number[]): void => {
    if (broken) return;
    try {
      setCpuAffinity(cpus);
    } catch (e) {
      broken = true;
      log.warn({ err: e, home }, 'data path: cannot pin to the home CPU; busy polling goes on unpinned');
      try {
        setCpuAffinity(all);
      } catch {
        // the mask it had stays: nothing more to do from here
      }
    }
  };
  return {
    pin: () => set([home]),
    unpin: () => set(all),
    later: (fn, ms) => {
      const t = setTimeout(fn, ms).unref();
      return () => clearTimeout(t);
    },
  };
}
