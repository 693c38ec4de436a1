import { FunctionProc, type ProcContext } from '../proc/types.js';

/** `sigma spawn hello world --wait` */
export default class Hello extends FunctionProc<string[], string> {
  run(args: string[], ctx: ProcContext): string {
    console.log(`hello from ${ctx.pid} in realm ${ctx.realm}`);
    return `hello ${args.join(' ') || 'world'}`;
  }
}
