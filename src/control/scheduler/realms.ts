// Realms: created by a KV create (which refuses a second one), removed once their last proc ended.
import { ControlError } from '../errors.js';
import { NAME_DELETE_ATTEMPTS_MAX, REALM_NAME } from '../names.js';
import { decodeRealmRecord, encode, type RealmRecord } from '../protocol/index.js';
import type { AckReply, RealmJournals, SchedulerMsg, SchedulerState } from './state.js';
import { setQuota } from './quotas.js';
import type { RealmQuota } from '../protocol/index.js';

/** Grace of each proc evicted because its realm is being removed. */
export const REALM_REMOVE_GRACE_MS = 1_000;

export function realmCreate(s: SchedulerState, name: string, quota: RealmQuota | undefined, reply: AckReply): void {
  if (!REALM_NAME.test(name)) return reply({ ok: false, error: { type: 'bad-spec', message: `realm names match [a-z0-9][a-z0-9-]{0,62}, got "${name}"`, field: 'name' } });
  const rec: RealmRecord = { name, state: 'active', createdAtMs: s.nowMs(), ...(quota === undefined ? {} : { quota }) };
  const bytes = encode(rec);
  const made = (): void => {
    s.realms.add(name);
    setQuota(s, name, quota);
    reply({ ok: true });
  };
  const exists = (): void => reply({ ok: false, error: new ControlError('realm-exists', `realm "${name}" already exists`).toWire() });
  // Only a refused create means another record is there. Any other failure (a timeout: the write may
  // have landed; no stream leader) is read back: our own record is a realm made, another's is one that
  // exists, none is a clear error the client may retry (it answered 'realm-exists' to all of them).
  const readBack = (why: unknown): void =>
    void s.deps.realmsKv.get(name).then(
      (cur) => (cur === null ? reply({ ok: false, error: new ControlError('internal', `realm "${name}" was not recorded (${(why as Error).message}); creating it again is safe`).toWire() }) : Buffer.compare(cur.value, bytes) === 0 ? made() : exists()),
      (e: unknown) => reply({ ok: false, error: new ControlError('internal', `realm "${name}": its record could not be written or read back (${(e as Error).message}); creating it again is safe`).toWire() }),
    );
  const record = (): void => void s.deps.realmsKv.create(name, bytes).then(made, (e: unknown) => ((e as { type?: string }).type === 'key-exists' ? exists() : readBack(e)));
  // The journal before the record: a realm that exists has one (its hosts have no right to make it).
  // Without journals (the simulator) the record is written at once, as the recorded seeds expect.
  const journals = s.deps.journals;
  if (journals === undefined) return record();
  journals.create(name).then(record, (e: unknown) => reply({ ok: false, error: new ControlError('internal', `realm "${name}": its journal could not be made: ${(e as Error).message}`).toWire() }));
}

/** Evicts every proc of the realm; once the last has exited, drops its names and its record. */
export function realmRemove(s: SchedulerState, name: string, reply: AckReply): void {
  if (!s.realms.has(name) && !s.removing.has(name)) return checkRealm(s, name, (known) => (known === true ? realmRemove(s, name, reply) : reply({ ok: false, error: unknownRealm(name, known).toWire() })));
  s.realms.delete(name); // no new spawns from here on
  const waiting = s.removing.get(name) ?? [];
  waiting.push(reply);
  s.removing.set(name, waiting);
  for (const r of [...s.live.values()]) if (r.spec.realm === name) s.ops.evict(r.pid, REALM_REMOVE_GRACE_MS, () => {});
  realmGone(s, name);
}

/** Drops the realm's names, its record, and what nodes keep for it. Best effort toward nodes. */
async function forget(s: SchedulerState, name: string): Promise<void> {
  for (const key of await retried(s, name, 'names not listed', () => s.deps.namesKv.keys())) {
    if (!key.startsWith(`${name}.`)) continue;
    // A lost delete leaves a removed realm's name behind (realm-teardown-under-load seed 3030).
    for (let attempt = 1; attempt <= NAME_DELETE_ATTEMPTS_MAX; attempt++) if (await s.deps.namesKv.delete(key).then(() => true, () => false)) break;
  }
  // Records of the realm this scheduler does not know of end here: a create whose answer was lost may
  // land after its spawn was refused and its cleanup found nothing (the chaos partition scenario, seed 2:
  // a record left 'starting' in the live index of a removed realm).
  const orphans = await retried(s, name, 'live records not ended', () => s.deps.table.endRealm(name, { kind: 'evicted', message: `its realm ${name} was removed` }));
  if (orphans.length > 0) s.log.warn({ realm: name, pids: orphans.slice(0, 10), count: orphans.length }, 'realm removal ended records no scheduler knew of');
  await retried(s, name, 'record not deleted', () => s.deps.realmsKv.delete(name));
  s.quotas.delete(name);
  // Nodes drop what they keep per realm (its idle hosts, its shared-memory pool), told again while a
  // notice goes unanswered: a lost one left a removed realm's idle host and pool on a node (chaos datapath).
  for (const node of s.liveness.lastSeen.keys()) tellRealmRemoved(s, node, name, 1);
  // Its journal last, after the record (its NATS user is on the way out): a host of the realm that
  // still writes finds no stream, and has no right to make one.
  // (No await without journals: the simulator's seeds were recorded without that turn.)
  const journals = s.deps.journals;
  if (journals !== undefined) await retried(s, name, 'journal not removed', () => journals.remove(name));
}

/**
 * Tries of one step of a realm's removal, a second apart: JetStream may be between leaders or reloading
 * users. After a healed partition its streams elected for up to 35 s, and a listing of the names found
 * no responders for longer than its own retries (the chaos partition scenario, seed 1).
 */
export const REALM_FORGET_ATTEMPTS_MAX = 30;

async function retried<T>(s: SchedulerState, realm: string, what: string, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (e) {
      if (attempt >= REALM_FORGET_ATTEMPTS_MAX || !s.active) throw e;
      s.log.warn({ err: e, realm, attempt }, `realm removal: ${what} yet; trying again`);
      await new Promise<void>((r) => s.ctx.ports.timers.setTimeout(r, 1_000));
    }
  }
}

/** Tries of telling a node a realm is gone, a second apart. */
export const REALM_REMOVED_ATTEMPTS_MAX = 10;

function tellRealmRemoved(s: SchedulerState, node: string, realm: string, attempt: number): void {
  s.deps.toNode(node, { op: 'realm-removed', realm }).catch(() => {
    if (attempt < REALM_REMOVED_ATTEMPTS_MAX && s.active && s.liveness.lastSeen.has(node)) s.ctx.ports.timers.setTimeout(() => tellRealmRemoved(s, node, realm, attempt + 1), 1_000);
  });
}

// A realm is gone once none of its procs is live and none has its create in flight: such a
// proc's terminal status (decided meanwhile, e.g. lost when its run order timed out) is written
// only when the create answers (found by the simulator: realm-teardown-under-load seed 1152 removed
// the realm while a dropped create reply left a record 'starting'). Pids start with `${realm}.`.
export function realmGone(s: SchedulerState, name: string): void {
  const waiting = s.removing.get(name);
  if (waiting === undefined || [...s.live.values()].some((r) => r.spec.realm === name) || [...s.creating.keys()].some((pid) => pid.startsWith(`${name}.`))) return;
  s.removing.delete(name);
  forget(s, name).then(
    () => waiting.forEach((w) => w({ ok: true })),
    (e: unknown) => {
      // Still there (its record at least): a removal asked again starts over rather than find it unknown.
      s.realms.add(name);
      // Deposed meanwhile (JetStream's elections after a healed partition): the next leader finishes it.
      const error = s.active ? new ControlError('internal', `realm ${name} not removed: ${(e as Error).message}; try again`) : new ControlError('no-scheduler', `realm ${name} not removed: this scheduler lost its lease meanwhile; ask the next one`);
      waiting.forEach((w) => w({ ok: false, error: error.toWire() }));
    },
  );
}

/** The realm list changed in the bucket: realms being removed stay out. */
/**
 * One change of the realms bucket, applied as the watch delivers it. (A list read after each change
 * could answer after a realm this scheduler had just created, and took it away again until the next
 * change: a spawn right after `createRealm` was refused unknown-realm.)
 */
export function realmSeen(s: SchedulerState, name: string, present: boolean): void {
  if (present && !s.removing.has(name)) s.realms.add(name);
  if (!present) s.realms.delete(name);
}

/**
 * A realm this scheduler does not know of is looked up in the bucket before anything is refused for it:
 * the recovery's listing of the realms can come back short without an error (a chaos pause run's
 * successor listed none, refused every spawn `unknown-realm` and ran four of them under a paused
 * predecessor's records, ghosts). An active record makes the realm known (its quota too); then `then`
 * runs in the actor with whether it is known now, or the read's error.
 */
export function checkRealm(s: SchedulerState, name: string, then: (known: boolean | Error) => void): void {
  s.deps.realmsKv.get(name).then(
    (e) => {
      const record = e?.value == null ? undefined : decodeRealmRecord(e.value);
      s.ctx.self.tell({ type: 'realm-checked', name, ...(record === undefined ? {} : { record }), then });
    },
    (error: unknown) => s.ctx.self.tell({ type: 'realm-checked', name, error, then }),
  );
}

export function realmChecked(s: SchedulerState, m: Extract<SchedulerMsg, { type: 'realm-checked' }>): void {
  if (m.record?.state === 'active' && !s.removing.has(m.name) && !s.realms.has(m.name)) {
    s.log.warn({ realm: m.name }, 'a realm missing from the recovered state was found in its bucket');
    s.realms.add(m.name);
    setQuota(s, m.name, m.record.quota);
  }
  m.then(m.error !== undefined ? (m.error instanceof Error ? m.error : new Error(String(m.error))) : s.realms.has(m.name));
}

/** The refusal of a realm that is not there (false) or could not be looked up (an error). */
export function unknownRealm(name: string, known: false | Error, field?: string): ControlError {
  return known === false ? new ControlError('unknown-realm', `realm "${name}" does not exist; create it with \`sigma realm create ${name}\``, field) : new ControlError('internal', `realm "${name}" is not known to this scheduler and its record could not be read (${known.message}); try again`, field);
}
