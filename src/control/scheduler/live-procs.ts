// The scheduler's accepted procs not yet exited, with what each realm holds of them (its quota usage).
import type { ProcRecord } from '../protocol/index.js';

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
