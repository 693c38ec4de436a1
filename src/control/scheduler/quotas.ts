// Realm quotas: what each realm holds of the live procs, checked at spawn.
import { ControlError } from '../errors.js';
import { encode, decodeRealmRecord, type RealmQuota } from '../protocol/index.js';
import type { ProcSpec } from '../../proc/types.js';
import type { RealmUsage } from './live-procs.js';
import type { AckReply, SchedulerState } from './state.js';
import { checkRealm, unknownRealm } from './realms.js';

/** Why `spec` would take its realm past its quota, or undefined when it fits. */
export function overQuota(q: RealmQuota | undefined, u: RealmUsage, spec: ProcSpec): string | undefined {
  if (q === undefined) return undefined;
  const realm = spec.realm;
  if (q.procs !== undefined && u.procs + 1 > q.procs) return `realm ${realm} is at its quota of ${q.procs} live procs (procs)`;
  if (!spec.lc) return undefined;
  if (q.mcpu !== undefined && u.mcpu + spec.mcpu > q.mcpu) return `realm ${realm} reserves ${u.mcpu} of its ${q.mcpu} mcpu quota; ${spec.mcpu} more do not fit (mcpu)`;
  if (q.memMb !== undefined && u.memMb + spec.memMb > q.memMb) return `realm ${realm} reserves ${u.memMb} of its ${q.memMb} MB memory quota; ${spec.memMb} more do not fit (memMb)`;
  return undefined;
}

/** Sets a realm's quota in its record, then in the scheduler's view (`{}`: no limits). */
export function realmQuota(s: SchedulerState, name: string, quota: RealmQuota, reply: AckReply): void {
  if (!s.realms.has(name)) return checkRealm(s, name, (known) => (known === true ? realmQuota(s, name, quota, reply) : reply({ ok: false, error: unknownRealm(name, known, 'name').toWire() })));
  const write = async (): Promise<void> => {
    const e = await s.deps.realmsKv.get(name);
    const rec = e?.value == null ? undefined : decodeRealmRecord(e.value);
    if (e === null || rec === undefined) throw new ControlError('unknown-realm', `realm "${name}" has no record`, 'name');
    await s.deps.realmsKv.update(name, encode({ ...rec, quota }), e.revision);
  };
  write().then(
    () => {
      setQuota(s, name, quota);
      reply({ ok: true });
    },
    (e: unknown) => reply({ ok: false, error: (e instanceof ControlError ? e : new ControlError('internal', `realm ${name}: quota not written: ${(e as Error).message}`)).toWire() }),
  );
}

export function setQuota(s: SchedulerState, name: string, quota: RealmQuota | undefined): void {
  if (quota === undefined || Object.keys(quota).length === 0) s.quotas.delete(name);
  else s.quotas.set(name, quota);
}
