import { Worker } from 'node:worker_threads';
import { FunctionProc } from '../../proc/types.js';

/** A noisy neighbour: spins `threads` threads flat out for `ms` milliseconds, then returns. */
export default class Spinner extends FunctionProc<[number, number], number> {
  async run([threads, ms]: [number, number]): Promise<number> {
    const source = `const end = Date.now() + ${Number(ms)}; let x = 0; while (Date.now() < end) x++; require('node:worker_threads').parentPort.postMessage(x);`;
    const spins = Array.from({ length: Number(threads) }, () => new Promise<number>((resolve, reject) => new Worker(source, { eval: true }).once('message', resolve).once('error', reject)));
    return (await Promise.all(spins)).length;
  }
}
