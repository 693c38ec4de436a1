import test from 'ava';
import fc from 'fast-check';
import { oneForAll, oneForOne, restForOne, type Context, type Decision, type StrategyKind, type SupervisorStrategy } from '../src/actors/index.js';
import type { AnyCell } from '../src/actors/cell.js';
import { virtualSystem } from './helpers/actors.js';

interface NodeSpec {
  kind: StrategyKind;
  decision: Decision;
  maxRestarts: number;
  withinMs: number;
  children: NodeSpec[];
}

const nodeSpec: fc.Memo<NodeSpec> = fc.memo((depth) =>
  fc.record({
    kind: fc.constantFrom<StrategyKind>('one-for-one', 'one-for-all', 'rest-for-one'),
    decision: fc.constantFrom<Decision>('resume', 'restart', 'restart', 'stop', 'escalate'),
    maxRestarts: fc.integer({ min: 0, max: 3 }),
    withinMs: fc.integer({ min: 1, max: 500 }),
    children: depth <= 1 ? fc.constant([]) : fc.array(nodeSpec(depth - 1), { maxLength: 3 }),
  }),
);

const make = { 'one-for-one': oneForOne, 'one-for-all': oneForAll, 'rest-for-one': restForOne };

function node(spec: NodeSpec) {
  const strategy: SupervisorStrategy = make[spec.kind]({ decide: () => spec.decision, maxRestarts: spec.maxRestarts, withinMs: spec.withinMs });
  return (ctx: Context<'fail'>) => ({
    supervisor: strategy,
    receive: () => {
      throw new Error(`injected failure in ${ctx.path}`);
    },
    preStart: () => {
      spec.children.forEach((c, i) => ctx.spawn(node(c), { name: `c${i}` }));
    },
  });
}

function liveCells(root: AnyCell): AnyCell[] {
  const out: AnyCell[] = [];
  const stack = [...root.childCells()];
  while (stack.length > 0) {
    const c = stack.pop()!;
    out.push(c);
    stack.push(...c.childCells());
  }
  return out;
}

/** Independent re-count of restart intensity from the event trace, with the spec of each supervisor. */
function checkIntensity(restarts: { atMs: number; path: string; cause: string }[], specOf: (supervisorPath: string) => NodeSpec | undefined, resets: { atMs: number; path: string }[]): string | undefined {
  const decisions = restarts.filter((r) => r.path === r.cause); // one per supervision decision
  for (const d of decisions) {
    const sup = d.cause.slice(0, d.cause.lastIndexOf('/'));
    const spec = specOf(sup);
    if (spec === undefined) continue;
    const sameKey = (o: { cause: string }) => (spec.kind === 'one-for-one' ? o.cause === d.cause : o.cause.slice(0, o.cause.lastIndexOf('/')) === sup);
    // Histories start afresh when the supervisor (or anything above it) is restarted or stopped.
    const epoch = Math.max(-1, ...resets.filter((r) => r.atMs <= d.atMs && (sup === r.path || sup.startsWith(r.path + '/'))).map((r) => r.atMs));
    const inWindow = decisions.filter((o) => sameKey(o) && o.atMs > d.atMs - spec.withinMs && o.atMs <= d.atMs && o.atMs > epoch);
    if (inWindow.length > spec.maxRestarts) return `${inWindow.length} restarts for ${d.cause} within ${spec.withinMs} ms (max ${spec.maxRestarts})`;
  }
  return undefined;
}

test('property - any tree under any failure sequence keeps the supervision invariants', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(nodeSpec(3), { minLength: 1, maxLength: 3 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 200 })), { maxLength: 25 }),
      fc.integer(),
      async (tops, failures, seed) => {
        const { system, ports, events } = virtualSystem(seed);
        const restarts: { atMs: number; path: string; cause: string }[] = [];
        const resets: { atMs: number; path: string }[] = [];
        const specs = new Map<string, NodeSpec>();
        const register = (path: string, spec: NodeSpec): void => {
          specs.set(path, spec);
          spec.children.forEach((c, i) => register(`${path}/c${i}`, c));
        };
        tops.forEach((spec, i) => {
          system.spawn(node(spec), { name: `t${i}` });
          register(`actor://local/t${i}`, spec);
        });
        await ports.time.run();
        for (const [pick, delayMs] of failures) {
          const live = liveCells(system.root).filter((c) => c.status === 'running');
          if (live.length > 0) live[pick % live.length]!.self.tell('fail');
          // No backoff here, so every decision and restart happens at the instant of the failure.
          const seen = events.length;
          const atMs = ports.time.nowMs();
          await ports.time.advance(delayMs);
          for (const e of events.slice(seen)) {
            if (e.type === 'restarted') restarts.push({ atMs, path: e.path, cause: e.cause });
            if (e.type === 'restarted' || e.type === 'stopped') resets.push({ atMs, path: e.path });
          }
        }
        await ports.time.run();
        const live = liveCells(system.root);
        // Every live actor's parent is live; the live count matches the tree; nothing is left stuck.
        for (const c of live) {
          if (c.parentCell !== undefined && !c.parentCell.alive) throw new Error(`${c.path} is live under a dead parent`);
        }
        if (system.stats().actors !== live.length) throw new Error(`actor count ${system.stats().actors} but ${live.length} reachable`);
        const stuck = live.filter((c) => c.status !== 'running');
        if (stuck.length > 0) throw new Error(`stuck after the run: ${stuck.map((c) => `${c.path} ${c.status}`).join(', ')}`);
        const violation = checkIntensity(restarts, (p) => (p === 'actor://local' ? undefined : specs.get(p)), resets);
        if (violation !== undefined) throw new Error(violation);
        await system.shutdown();
        if (system.stats().actors !== 0) throw new Error(`${system.stats().actors} actors left after shutdown`);
      },
    ),
    { numRuns: 150, verbose: 1 },
  );
  t.pass();
});
