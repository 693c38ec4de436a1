/**
 * What the actors suite runs on each implementation (ours and nact), so that both get the same
 * message shapes and counts. Each implementation keeps one system for the whole suite, as a process
 * would in production, and spawns fresh actors per run.
 */

/** Messages per credit: the sender waits for an ack after each batch, so a receiver mailbox sized to
 * one batch never rejects. nact gets the same batches although its mailbox is unbounded. */
export const TELL_BATCH = 10_000;
export const ASK_TIMEOUT_MS = 1_000;

export interface TellRun {
  perS: number;
  cpuNsPerMsg: number;
}

export interface AskRun {
  p50Us: number;
  p99Us: number;
}

export interface SpawnRun {
  perS: number;
  /** Heap growth per live actor between full GCs; NaN when the run did not measure memory. */
  bytesPerActor: number;
  /** Time to stop the parent and its children, when the implementation lets us wait for it. */
  stopMs?: number;
}

export interface ActorWorkloads {
  /** One sender actor tells one receiver `total` messages { n, ack } in TELL_BATCH credits. */
  tell(total: number): Promise<TellRun>;
  /** `count` sequential asks { v, replyTo } to an echo actor that replies v. */
  ask(count: number): Promise<AskRun>;
  /**
   * A parent actor, told once, spawns `names.length` trivial named children. With `memory`, full GCs
   * around the spawn measure bytesPerActor (NaN otherwise: the GCs deoptimize the code being timed).
   */
  spawn(names: readonly string[], memory: boolean): Promise<SpawnRun>;
  close(): Promise<void>;
}
