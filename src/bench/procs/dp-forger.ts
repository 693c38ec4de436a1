import { F_COPY } from '../../datapath/descriptor.js';
import { encodeFrame, FRAME_BYTES } from '../../datapath/frames.js';
import { hostDataPath } from '../../host/datapath/host-datapath.js';
import { ServiceProc, type DataMessage } from '../../proc/types.js';
import { BenchError } from '../harness.js';
import { FORGED_LENGTH_BYTES, type ProcCommand } from './dp-commands.js';

const POOL_ALIGN_BYTES = 256;
/** Host sockets backlogged past this skip a burst (the forger must not be what slows the machine down). */
const BACKLOG_BYTES_MAX = 1 << 16;

/**
 * The `datapath` benchmark's forging proc, in realm B: every `periodMs` it writes raw descriptors on its
 * host's data-path socket (past its own endpoint's checks) naming realm A's server endpoint and random
 * offsets of realm A's pool — as itself, as realm A's client (a spoofed source), as the system (0), and
 * with kernel-only flags. None may be delivered; the server proc counts any that is (FORGED_LENGTH_BYTES).
 */
export default class BenchForger extends ServiceProc<never> {
  #timer: NodeJS.Timeout | undefined;
  #attempts = 0;
  receive(): void {}

  postStop(): void {
    clearInterval(this.#timer);
  }

  onData(msg: DataMessage): string {
    const cmd = JSON.parse(new TextDecoder().decode(msg.bytes)) as ProcCommand;
    if (cmd.op === 'forge') this.#start(cmd);
    else if (cmd.op === 'forge-stop') clearInterval(this.#timer);
    else throw new BenchError(`the forger has no command ${cmd.op}`);
    return JSON.stringify({ attempts: this.#attempts });
  }

  #start(cmd: Extract<ProcCommand, { op: 'forge' }>): void {
    const dp = hostDataPath();
    const me = this.proc.endpoint?.endpoint;
    if (dp === undefined || me === undefined) throw new BenchError('the forger runs in a host without a data path');
    clearInterval(this.#timer);
    const frames = Buffer.alloc(4 * FRAME_BYTES);
    const offset = (): number => Math.floor((Math.random() * cmd.poolBytes) / POOL_ALIGN_BYTES) * POOL_ALIGN_BYTES;
    const generation = (): number => 1 + Math.floor(Math.random() * 1000);
    this.#timer = setInterval(() => {
      const base = { dstEp: cmd.dstEp, length: FORGED_LENGTH_BYTES, requestId: 0n };
      encodeFrame({ ...base, srcEp: me, offset: offset(), generation: generation(), flags: 0 }, frames, 0);
      encodeFrame({ ...base, srcEp: cmd.spoofEp, offset: offset(), generation: generation(), flags: 0 }, frames, FRAME_BYTES);
      encodeFrame({ ...base, srcEp: 0, offset: offset(), generation: generation(), flags: 0 }, frames, 2 * FRAME_BYTES);
      encodeFrame({ ...base, srcEp: me, offset: offset(), generation: generation(), flags: F_COPY }, frames, 3 * FRAME_BYTES);
      if (dp.pendingWriteBytes() < BACKLOG_BYTES_MAX && dp.writeRaw(frames)) this.#attempts += 4;
    }, cmd.periodMs);
  }
}
