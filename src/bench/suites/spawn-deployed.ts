/**
 * The spawn suite's deployed-program figures: `deploy_ms` (type-check, bundle, check and store a ~100 KB
 * TypeScript program, as users write them)
 * and `cold_start_deployed_p50_ms` (a spawn of that freshly deployed program on a node that has never
 * seen it, to its first line, the node's fetch from the store included).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bus } from '../../nats/types.js';
import { deploy } from '../../programs/client.js';

/** About the size the issue names for a realistic program with its dependencies. */
export const DEPLOYED_PROGRAM_BYTES = 100 * 1024;

/** A stamping function proc (the monotonic clock, as the suite's other programs) padded to DEPLOYED_PROGRAM_BYTES with data unique to `i` (a hash of its own). */
export const deployedProgram = (procTypes: string, i: number): string => `import { FunctionProc } from ${JSON.stringify(procTypes)};
const PAD = ${JSON.stringify(`${i}:`.padEnd(DEPLOYED_PROGRAM_BYTES, 'x'))};
export default class Stamp extends FunctionProc {
  run(): string { return PAD.length > 0 ? process.hrtime.bigint().toString() : '0'; }
}
`;

/** Deploys `count` fresh programs one at a time and spawns each once; `run` measures a spawn to its first line. */
export async function measureDeployed(o: { bus: Bus; dir: string; procTypes: string; count: number; run: (program: string) => Promise<{ startMs: number }> }): Promise<{ deployMs: number[]; coldMs: number[] }> {
  const deployMs: number[] = [];
  const coldMs: number[] = [];
  for (let i = 0; i < o.count; i++) {
    const file = join(o.dir, `deployed-${i}.ts`);
    writeFileSync(file, deployedProgram(o.procTypes, i));
    const t0 = performance.now();
    await deploy(o.bus, file, { name: `deployed-${i}`, realm: 'default' });
    deployMs.push(performance.now() - t0);
    coldMs.push((await o.run(`deployed-${i}`)).startMs);
  }
  return { deployMs, coldMs };
}
