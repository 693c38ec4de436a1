import { FunctionProc, type ProcContext } from '../proc/types.js';

/** Sleeps for args[0] ms (default: until evicted), leaving early when evicted. */
export default class Sleep extends FunctionProc<[number?], string> {
  async run([ms]: [number?], ctx: ProcContext): Promise<string> {
    const evicted = ctx.waitEvict().then(() => 'evicted');
    if (ms === undefined) return evicted;
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<string>((r) => (timer = setTimeout(() => r('slept'), ms)));
    const how = await Promise.race([slept, evicted]);
    clearTimeout(timer);
    return how;
  }
}
