// The scheduler's accepted procs not yet exited, with what each realm holds of them (its quota usage).
import type { ProcRecord } from '../protocol/index.js';

export interface RealmUsage {
  procs: number;
  /** Reserved by its LC procs. */
  mcpu: number;
  memMb: number;
}

/**
 * Accepted procs not yet exited, what each realm holds of them, and each parent's children: kept in step
 * on every set and delete, so that an exit costs the same with a million live procs as with ten.
 */
export class LiveProcs extends Map<string, ProcRecord> {
  readonly #usage = new Map<string, RealmUsage>();
  readonly #children = new Map<string, Set<string>>();

  override set(pid: string, r: ProcRecord): this {
    const old = super.get(pid);
    if (old !== undefined) this.#forget(old);
    this.#count(r, 1);
    if (r.spec.parent !== undefined) this.#children.set(r.spec.parent, (this.#children.get(r.spec.parent) ?? new Set()).add(pid));
    return super.set(pid, r);
  }

  override delete(pid: string): boolean {
    const old = super.get(pid);
    if (old !== undefined) this.#forget(old);
    return super.delete(pid);
  }

  /** The live procs whose spec names `parent` as theirs. */
  childrenOf(parent: string): ProcRecord[] {
    return [...(this.#children.get(parent) ?? [])].map((pid) => super.get(pid)!);
  }

  #forget(r: ProcRecord): void {
    this.#count(r, -1);
    const siblings = r.spec.parent === undefined ? undefined : this.#children.get(r.spec.parent);
    siblings?.delete(r.pid);
    if (siblings?.size === 0) this.#children.delete(r.spec.parent!);
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
