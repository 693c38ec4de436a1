import test from 'ava';
import type { Context } from '../src/actors/index.js';
import { encode, type RealmRecord, type SpawnReply } from '../src/control/protocol/index.js';
import { spawn } from '../src/control/scheduler/placing.js';
import { realmChecked } from '../src/control/scheduler/realms.js';
import { realmQuota } from '../src/control/scheduler/quotas.js';
import { recover } from '../src/control/scheduler/recovery.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg } from '../src/control/scheduler/state.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A scheduler whose recovery listed no realms although the bucket holds `blue` (a listing that came
 * back short), with every message it tells itself handed to the test.
 */
function recoveredWithoutRealms(bucket: Map<string, RealmRecord>, readFails = false): { s: SchedulerState; told: SchedulerMsg[]; reads: string[] } {
  const told: SchedulerMsg[] = [];
  const reads: string[] = [];
  const realmsKv = {
    get: async (k: string) => {
      reads.push(k);
      if (readFails) throw new Error('no responders');
      const r = bucket.get(k);
      return r === undefined ? null : { key: k, value: encode(r), revision: 1 };
    },
  };
  const ctx = { ports: { clock: { nowMs: () => 0 } }, log: { info: () => {}, warn: () => {} }, self: { tell: (m: SchedulerMsg) => told.push(m) } } as unknown as Context<SchedulerMsg>;
  const s = new SchedulerState({ nodeTimeoutMs: 3_000, term: 1, programs: {}, realmsKv } as unknown as SchedulerDeps, ctx);
  recover(s, { type: 'recovered', records: [], nodes: [], realms: [], quotas: [] });
  return { s, told, reads };
}

/** Spawns `realm`'s proc, runs the realm check it waits for, and returns the answer (undefined: none). */
async function spawnIn(w: ReturnType<typeof recoveredWithoutRealms>, realm: string): Promise<SpawnReply | undefined> {
  let answer: SpawnReply | undefined;
  spawn(w.s, { program: 'nope', realm }, 0, (r) => (answer = r));
  for (let i = 0; i < 10 && answer === undefined; i++) {
    await tick();
    const m = w.told.shift();
    if (m?.type === 'realm-checked') realmChecked(w.s, m);
  }
  return answer;
}

const blue: RealmRecord = { name: 'blue', state: 'active', createdAtMs: 0, quota: { procs: 3 } };

test('realms - a spawn for a realm the recovery did not list is looked up: the bucket has it, so it is known (its quota too) and the spawn goes on', async (t) => {
  const w = recoveredWithoutRealms(new Map([['blue', blue]]));
  const answer = await spawnIn(w, 'blue');
  t.deepEqual(w.reads, ['blue'], 'one read of its record');
  t.is(answer?.ok, false);
  t.is(answer?.ok === false ? answer.error.type : undefined, 'unknown-program', 'past the realm check: refused for its program, not its realm');
  t.true(w.s.realms.has('blue'));
  t.deepEqual(w.s.quotas.get('blue'), { procs: 3 });
  await spawnIn(w, 'blue');
  t.deepEqual(w.reads, ['blue'], 'known from then on: not read again');
});

test('realms - a spawn for a realm the bucket does not have either is unknown-realm; one whose record cannot be read gets no answer (the client sends it again)', async (t) => {
  const w = recoveredWithoutRealms(new Map([['blue', blue]]));
  const answer = await spawnIn(w, 'green');
  t.is(answer?.ok === false ? answer.error.type : undefined, 'unknown-realm');
  t.false(w.s.realms.has('green'));
  const down = recoveredWithoutRealms(new Map([['blue', blue]]), true);
  t.is(await spawnIn(down, 'blue'), undefined);
  t.false(down.s.realms.has('blue'), 'not known on a failed read');
});

test('realms - a quota change for a realm the recovery did not list is looked up too; an unreadable record is an internal error, not unknown-realm', async (t) => {
  const down = recoveredWithoutRealms(new Map([['blue', blue]]), true);
  let answer: { ok: boolean; error?: { type: string } } | undefined;
  realmQuota(down.s, 'blue', { procs: 5 }, (r) => (answer = r as typeof answer));
  await tick();
  const m = down.told.shift();
  if (m?.type === 'realm-checked') realmChecked(down.s, m);
  t.is(answer?.error?.type, 'internal');
});
