import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fault } from '../src/sim/faults.js';
import { MUTANTS, MUTANT_NAMES } from '../src/sim/mutants.js';
import { runScenario } from '../src/sim/run.js';
import type { Scenario } from '../src/sim/scenario.js';
import { shrink } from '../src/sim/shrink.js';
import { readTrace, writeTrace } from '../src/sim/trace.js';
import nodeChurn from '../simulations/node-churn.js';
import slowKv from '../simulations/slow-kv.js';
import spawnStorm from '../simulations/spawn-storm.js';
import leaderFailover from '../simulations/leader-failover.js';
import realmTeardown from '../simulations/realm-teardown-under-load.js';

const SCENARIOS: Record<string, Scenario> = { 'node-churn': nodeChurn, 'spawn-storm': spawnStorm, 'leader-failover': leaderFailover };

/** The invariant each mutant is expected to break (the one built to catch that kind of bug). */
const CATCHES: Record<string, string> = { 'stale-leader': 'one-scheduler', 'exit-twice': 'terminal-once', 'lc-overcommit': 'lc-capacity', 'leak-buffer': 'buffers-reclaimed', 'forget-restart': 'liveness' };

for (const m of MUTANT_NAMES) {
  test(`sim invariants - mutant ${m} is caught by ${CATCHES[m]}, and the same seed passes without it`, async (t) => {
    const s = SCENARIOS[MUTANTS[m].scenario]!;
    let caught: string[] = [];
    let seed = 1;
    for (; seed <= 5 && caught.length === 0; seed++) caught = (await runScenario(s, seed, { mutant: m })).violations.map((v) => v.invariant);
    t.true(caught.includes(CATCHES[m]!), `${m} on ${s.name} seeds 1..${seed - 1}: ${caught.join(', ') || 'nothing caught'}`);
    const clean = await runScenario(s, seed - 1);
    t.deepEqual(clean.violations, []);
  });
}

// Found by the simulator: a leader whose KV renewal hung kept acting until the call timed out (5 s),
// past its 3 s lease, while a standby took over ('one-scheduler': creates and dispatches from the old
// leader after the new term began). The lease now steps down by its own timer.
const HANG: Fault = { kind: 'slow-kv', atMs: 100, durationMs: 8_000, node: '@leader', delayMs: 3_000 };

test('sim invariants - a leader whose KV renewal hangs steps down before its lease lapses', async (t) => {
  const r = await runScenario(slowKv, 1, { faults: [HANG] });
  t.deepEqual(r.violations.filter((v) => v.invariant === 'one-scheduler'), []);
});

test('sim invariants - slow KV inside the lease margin leaves one scheduler acting', async (t) => {
  const r = await runScenario(slowKv, 1, { faults: [{ ...HANG, delayMs: 200 }] });
  t.deepEqual(r.violations, []);
});

// Found by the simulator: realm-teardown-under-load seed 1152. A fast-path spawn's run order was
// dropped and so was its create's reply (the record landed, 'starting'); the order timed out, so the
// proc was decided lost, but that write waits for the create's answer (5 s). The realm removal did
// not wait for it and finished with the record still 'starting'. It now waits for in-flight creates.
test('sim invariants - a realm is removed only after its procs with a create in flight have ended (seed 1152)', async (t) => {
  const r = await runScenario(realmTeardown, 1152);
  t.deepEqual(r.violations, []);
  // The case itself: every record of the realm is exited before the realm goes, including the one
  // whose create answered last (the trace orders events by virtual time).
  const events = r.trace.lines.map((l) => JSON.parse(l) as unknown[]);
  const removedAt = events.findIndex((e) => e[1] === 'realm-removed' && e[2] === 'tenant');
  t.true(removedAt > 0, 'the realm was removed');
  const last = new Map<string, unknown>();
  for (const e of events.slice(0, removedAt)) if (e[1] === 'proc' && String(e[2]).startsWith('tenant.')) last.set(String(e[2]), e[3]);
  t.is(last.get('tenant.1-f'), 'exited');
  t.deepEqual([...last].filter(([, state]) => state !== 'exited'), []);
});

test('sim replay - a trace written to disk replays to the same hash, event for event; a changed trace diverges where it was changed', async (t) => {
  const r = await runScenario(nodeChurn, 3);
  const file = join(mkdtempSync(join(tmpdir(), 'sim-')), 'trace.jsonl');
  writeTrace(file, { scenario: r.scenario, seed: r.seed, mutant: r.mutant, faults: r.faults }, r.trace, r.hash);
  const { header, lines } = readTrace(file);
  t.is(header.hash, r.hash);
  t.true(lines.length > 100);
  const again = await runScenario(nodeChurn, header.seed, { faults: header.faults as Fault[], expected: lines });
  t.is(again.hash, r.hash);
  t.is(again.trace.divergence, undefined);
  const tampered = [...lines];
  tampered[40] = tampered[40]!.replace(/^\[(\d+)/, (_, n: string) => `[${Number(n) + 1}`);
  const off = await runScenario(nodeChurn, header.seed, { faults: header.faults as Fault[], expected: tampered });
  t.is(off.trace.divergence?.line, 41);
  t.is(off.trace.divergence?.expected, tampered[40]);
});

test('sim determinism - the same seed gives the same hash under faults, another seed does not', async (t) => {
  const a = await runScenario(nodeChurn, 11);
  const b = await runScenario(nodeChurn, 11);
  const c = await runScenario(nodeChurn, 12);
  t.true(a.faults.length > 0);
  t.is(a.hash, b.hash);
  t.is(a.events, b.events);
  t.not(a.hash, c.hash);
});

test('sim shrink - ddmin finds the two faults that together make a synthetic check fail', async (t) => {
  const faults: Fault[] = Array.from({ length: 12 }, (_, i) => ({ kind: 'proc-crash', atMs: i * 100, node: 'node-1', pick: i }));
  const culprits = [faults[3]!, faults[9]!];
  const r = await shrink(faults, async (f) => culprits.every((c) => f.includes(c)));
  t.deepEqual(r.faults, culprits);
  t.true(r.minimal);
  t.true(r.runs < 40, `${r.runs} runs`);
});

test('sim shrink - a failing fault schedule of a real run shrinks to a smaller one that still fails', async (t) => {
  const r = await runScenario(nodeChurn, 1, { mutant: 'leak-buffer' });
  t.true(r.violationCount > 0);
  t.true(r.faults.length > 2);
  const sh = await shrink(r.faults, async (f) => (await runScenario(nodeChurn, 1, { mutant: 'leak-buffer', faults: f })).violationCount > 0);
  t.true(sh.faults.length < r.faults.length, `${r.faults.length} -> ${sh.faults.length}`);
  t.true(sh.faults.length >= 1, 'the leak needs a host to die');
  t.true(sh.faults.every((f) => f.kind === 'host-crash' || f.kind === 'node-crash' || f.kind === 'host-hang'), JSON.stringify(sh.faults));
  const again = await runScenario(nodeChurn, 1, { mutant: 'leak-buffer', faults: sh.faults });
  t.true(again.violations.some((v) => v.invariant === 'buffers-reclaimed'));
});
