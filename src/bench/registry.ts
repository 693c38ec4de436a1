/**
 * The suites `npm run bench -- <suite>` knows. Adding one is a file under suites/ and one line here;
 * suites load lazily so that `actors` never pulls in NATS or the cluster launcher.
 */
import type { Suite } from './harness.js';

export interface SuiteEntry {
  name: string;
  load(): Promise<Suite>;
}

export const SUITES: readonly SuiteEntry[] = [
  { name: 'actors', load: async () => (await import('./suites/actors.js')).actorsSuite },
  { name: 'spawn', load: async () => (await import('./suites/spawn.js')).spawnSuite },
  { name: 'datapath', load: async () => (await import('./suites/datapath.js')).datapathSuite },
  { name: 'failover', load: async () => (await import('./suites/failover.js')).failoverSuite },
  { name: 'isolation', load: async () => (await import('./suites/isolation.js')).isolationSuite },
];

export const suiteNames = (): string[] => SUITES.map((s) => s.name);

export function findSuite(name: string): SuiteEntry | undefined {
  return SUITES.find((s) => s.name === name);
}
