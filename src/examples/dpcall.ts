import { FunctionProc, type ProcContext } from '../proc/types.js';

/**
 * Calls a data-path service and returns its answer as text: `sigma spawn dpcall echo hello --wait`.
 * Args: [target, payload, times = 1]; every answer must be the same, else the proc fails.
 */
export default class DpCall extends FunctionProc<[string, string, number?], string> {
  async run([target, payload, times = 1]: [string, string, number?], ctx: ProcContext): Promise<string> {
    let answer = '';
    for (let i = 0; i < times; i++) {
      const got = new TextDecoder().decode(await ctx.call(target, payload));
      if (i > 0 && got !== answer) throw new Error(`answer ${i} differs: ${got} vs ${answer}`);
      answer = got;
    }
    return answer;
  }
}
