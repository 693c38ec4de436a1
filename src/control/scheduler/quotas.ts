// Realm quotas: what each realm holds of the live procs, checked at spawn.
import { ControlError } from '../errors.js';
import { encode, decodeRealmRecord, type ProcRecord, type RealmQuota } from '../protocol/index.js';
import type { ProcSpec } from '../../proc/types.js';
import type { AckReply, SchedulerState } from './state.js';

export interface RealmUsage {
  procs: number;
  /** Reserved by its LC procs. */
  mcpu: number;
  memMb: number;
}

/** Accepted procs not yet exited, and what each realm holds of them: kept in step on every set and delete. */
export class LiveProcs extends Map<string, ProcRecord> {
  readonly #usage = new Map<string, RealmUsage>();

  override set(pid: string, r: ProcRecord): this {
    const old = super.get(pid);
    if (old !== undefined) this.#count(old, -1);
    this.#count(r, 1);
    return super.set(pid, r);
  }

  override delete(pid: string): boolean {
    const old = super.get(pid);
    if (old !== undefined) this.#count(old, -1);
    return super.delete(pid);
  }

  usage(realm: string): RealmUsage {
    return this.#usage.get(realm) ?? { procs: 0, mcpu: 0, memMb: 0 };
  }

  #count(r: ProcRecord, sign: 1 | -1): void {
    const u = this.usage(r.spec.realm);
    const next = { procs: u.procs + sign, mcpu: u.mcpu + (r.spec.lc ? sign * r.spec.mcpu : 0), memMb: u.memMb + (r.spec.lc ? sign * r.spec.memMb : 0) };
    if (next.procs === 0) this.#usage.delete(r.spec.realm);
    else this.#usage.set(r.spec.realm, next);
  }
}

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
  if (!s.realms.has(name)) return reply({ ok: false, error: new ControlError('unknown-realm', `realm "${name}" does not exist`, 'name').toWire() });
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
