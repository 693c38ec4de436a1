import { ServiceProc, type DataMessage } from '../proc/types.js';

/**
 * One stage of a function chain (SPRIGHT's direct routing): adds 1 to every byte of the request in
 * place, then hands the same buffer to the next stage named in its args — the last stage answers the
 * original caller. Args: [next?: string].
 */
export default class Stage extends ServiceProc<never> {
  receive(): void {}
  async onData(msg: DataMessage): Promise<DataMessage | undefined> {
    const b = msg.bytes;
    for (let i = 0; i < b.length; i++) b[i] = (b[i]! + 1) & 0xff;
    const next = this.proc.args[0];
    if (typeof next !== 'string') return msg;
    await this.proc.forward(next, msg);
    return undefined;
  }
}
