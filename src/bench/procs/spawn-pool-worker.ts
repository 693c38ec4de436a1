/**
 * The `spawn` benchmark's `pool` baseline: what a user would hand-build for fast starts without our
 * control plane — a pre-forked plain Node process that, per task sent over IPC, import()s a fresh
 * module (never loaded before) and runs its default export, as a proc host runs a program. The task's
 * first line stamps the shared monotonic clock (process.hrtime.bigint(), CLOCK_MONOTONIC), the same
 * clock the bench reads when it sends the task.
 *
 * `load`: `import` is the baseline as the issue defines it (`pool_p50_ms`); `require` loads the ES module
 * with require() (Node >= 20.19), as a proc host loads programs (src/host/runner.ts), which a careful
 * engineer would also do: no file read on the thread pool, no promise hops (`pool_require_p50_ms`).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const requireModule = createRequire(import.meta.url);

export interface PoolTask {
  seq: number;
  /** An ES module whose default export is a class with run(), as a proc program. */
  path: string;
  load: 'import' | 'require';
}
export type PoolAnswer = { seq: number; ok: true; first: string } | { seq: number; ok: false; error: string };

const send = (m: PoolAnswer | { ready: true }): void => void process.send!(m);

// What a program imports is loaded before the first task, as a proc host has the runner's modules.
await import('../../proc/types.js');

process.on('message', (raw) => {
  const task = raw as PoolTask;
  void (async () => {
    try {
      type Program = { default: new () => { run(args: unknown[]): unknown } };
      const mod = task.load === 'require' ? (requireModule(task.path) as Program) : ((await import(pathToFileURL(task.path).href)) as Program);
      const first = await new mod.default().run([]);
      send({ seq: task.seq, ok: true, first: String(first) });
    } catch (e) {
      send({ seq: task.seq, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
