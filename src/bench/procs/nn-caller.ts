import { FunctionProc, type ProcContext } from '../../proc/types.js';

/**
 * The noisy-neighbour probe: `count` sequential calls to the service `target` with a small payload, a
 * pause of `gapMs` between them (an interactive service, not a saturating one); returns each call's
 * round trip in µs, timed inside the proc (no control plane on the clock).
 */
export default class NnCaller extends FunctionProc<[string, number, number], number[]> {
  async run([target, count, gapMs]: [string, number, number], ctx: ProcContext): Promise<number[]> {
    const rtts: number[] = [];
    const payload = 'x'.repeat(64);
    for (let i = 0; i < Number(count); i++) {
      const t0 = process.hrtime.bigint();
      await ctx.call(target, payload, { timeoutMs: 5_000 });
      rtts.push(Number(process.hrtime.bigint() - t0) / 1_000);
      if (Number(gapMs) > 0) await new Promise((r) => setTimeout(r, Number(gapMs)));
    }
    return rtts;
  }
}
