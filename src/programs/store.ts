/**
 * Where deployed programs live: their bundles in a JetStream object store under their content hash,
 * and per (realm, name) a record of its versions and which one new spawns get, in a KV bucket. Every
 * read and write names its realm: a realm's programs are found under `<realm>.` only.
 */
import { decodeJson, encode } from '../control/protocol/index.js';
import type { Bus, Kv, ObjectStore } from '../nats/types.js';
import type { ProcKind } from '../proc/types.js';
import { REALM_NAME } from '../control/names.js';
import { BUILTIN_PROGRAMS } from '../examples/index.js';
import { DeployError } from './errors.js';
import { hashOf, isHash, PROGRAM_NAME, type Bundle } from './bundle.js';
import { traceSpawn } from '../spawn-trace.js';

export const PROGRAMS_BUCKET = 'sigma_programs';
export const PROGRAM_CODE_BUCKET = 'sigma_program_code';
/** Versions kept per program; the oldest goes (and its bundle, when nothing else uses it). */
export const PROGRAM_VERSIONS_MAX = 16;
const CAS_ATTEMPTS_MAX = 8;

export interface ProgramVersion {
  version: number;
  hash: string;
  /** Where its bundle's one chunk is in the object store (a fetch in one round trip); absent for older records and larger bundles. */
  chunk?: string;
  bytes: number;
  kind: ProcKind;
  deployedAtMs: number;
}

export interface ProgramRecord {
  realm: string;
  name: string;
  /** The version new spawns get. */
  current: number;
  versions: ProgramVersion[];
}

/** What a spawn runs: the program's current bundle (and where its chunk is, see ProgramVersion). */
export interface ProgramRef {
  hash: string;
  version: number;
  chunk?: string;
}

const refOf = (v: ProgramVersion): ProgramRef => ({ hash: v.hash, version: v.version, ...(v.chunk === undefined ? {} : { chunk: v.chunk }) });

export const programKey = (realm: string, name: string): string => `${realm}.${name}`;
/**
 * The programs of cluster.config.ts, deployed by the launcher at start: every realm may spawn them (as
 * it may the built-in ones) unless it has a program of that name itself. No realm can be named so
 * (realm names are [a-z0-9][a-z0-9-]*), and no client call takes it as a realm.
 */
export const CLUSTER_PROGRAMS = '_cluster';

function decodeRecord(b: Uint8Array): ProgramRecord | undefined {
  const v = decodeJson(b) as Partial<ProgramRecord> | undefined;
  if (typeof v !== 'object' || v === null || typeof v.realm !== 'string' || typeof v.name !== 'string' || typeof v.current !== 'number' || !Array.isArray(v.versions)) return undefined;
  return v as ProgramRecord;
}

export function checkName(what: 'program' | 'realm', name: string): void {
  if (what === 'realm' && !REALM_NAME.test(name)) throw new DeployError('bad-name', `realm name "${name}" must match ${REALM_NAME}`);
  if (!PROGRAM_NAME.test(name)) throw new DeployError('bad-name', `${what} name "${name}" must be 1-64 letters, digits, '-' or '_'`);
}

/** The control plane's view of the programs (admin user: nodes, the scheduler, the CLI). */
export class ProgramStore {
  private constructor(
    readonly kv: Kv,
    private readonly code: ObjectStore,
    private readonly realmExists: (realm: string) => Promise<boolean>,
    private readonly nowMs: () => number,
  ) {}

  static async open(bus: Bus, realmsKv: Kv, nowMs: () => number = Date.now): Promise<ProgramStore> {
    if (bus.objectStore === undefined) throw new DeployError('no-store', 'this bus has no object store (deployed programs need JetStream)');
    const [kv, code] = await Promise.all([bus.kv(PROGRAMS_BUCKET, { history: 1 }), bus.objectStore(PROGRAM_CODE_BUCKET)]);
    return new ProgramStore(kv, code, async (r) => (await realmsKv.get(r)) !== null, nowMs);
  }

  /** Callers have checked the names (a realm, or CLUSTER_PROGRAMS from the launcher). */
  async #record(realm: string, name: string): Promise<{ rec: ProgramRecord; revision: number } | undefined> {
    const e = await this.kv.get(programKey(realm, name));
    const rec = e === null ? undefined : decodeRecord(e.value);
    return rec === undefined || rec.realm !== realm ? undefined : { rec, revision: e!.revision };
  }

  /** Stores the bundle (once per hash) and makes it the program's current version. */
  async deploy(realm: string, name: string, b: Pick<Bundle, 'code' | 'hash' | 'kind'>): Promise<ProgramVersion> {
    checkName('realm', realm);
    checkName('program', name);
    return this.#deploy(realm, name, b);
  }

  /** A program of cluster.config.ts (the launcher, at start): every realm may spawn it. */
  deployForCluster(name: string, b: Pick<Bundle, 'code' | 'hash' | 'kind'>): Promise<ProgramVersion> {
    checkName('program', name);
    return this.#deploy(CLUSTER_PROGRAMS, name, b);
  }

  async #deploy(realm: string, name: string, b: Pick<Bundle, 'code' | 'hash' | 'kind'>): Promise<ProgramVersion> {
    // A spawn resolves built-in programs first: a deployed one of that name would never run.
    if (Object.hasOwn(BUILTIN_PROGRAMS, name)) throw new DeployError('bad-name', `"${name}" is a built-in program (${Object.keys(BUILTIN_PROGRAMS).join(', ')}); give yours another name with --name`);
    if (realm !== CLUSTER_PROGRAMS && !(await this.realmExists(realm))) throw new DeployError('unknown-realm', `realm "${realm}" does not exist; create it with \`sigma realm create ${realm}\``);
    if (hashOf(b.code) !== b.hash) throw new DeployError('syntax', 'the bundle does not match its hash');
    // Content-addressed: a bundle stored before (another realm's, an earlier deploy) is not sent again.
    const at = (await this.code.locate(b.hash)) ?? (await this.code.put(b.hash, b.code));
    const dropped: string[] = [];
    const ver = await this.#change(realm, name, (cur) => {
      const versions = cur?.versions ?? [];
      // The same bundle again (a cluster restart, a deploy with nothing changed) is the same version.
      const same = cur?.versions.find((v) => v.version === cur.current && v.hash === b.hash);
      if (same !== undefined) return [cur!, same];
      const v: ProgramVersion = { version: (versions.at(-1)?.version ?? 0) + 1, hash: b.hash, ...(at.chunk === undefined ? {} : { chunk: at.chunk }), bytes: b.code.length, kind: b.kind, deployedAtMs: this.nowMs() };
      const all = [...versions, v];
      dropped.push(...all.slice(0, Math.max(0, all.length - PROGRAM_VERSIONS_MAX)).map((x) => x.hash));
      return [{ realm, name, current: v.version, versions: all.slice(-PROGRAM_VERSIONS_MAX) }, v];
    });
    await this.#collect(dropped);
    return ver;
  }

  /** Makes `version` (default: the one before the current) what new spawns get; running procs keep theirs. */
  async rollback(realm: string, name: string, version?: number): Promise<ProgramVersion> {
    checkName('realm', realm);
    checkName('program', name);
    return this.#change(realm, name, (cur) => {
      if (cur === undefined) throw new DeployError('unknown-program', `realm ${realm} has no program "${name}"`);
      const i = cur.versions.findIndex((v) => v.version === cur.current);
      const to = version === undefined ? cur.versions[i - 1] : cur.versions.find((v) => v.version === version);
      if (to === undefined) throw new DeployError('unknown-version', version === undefined ? `${name} v${cur.current} is its oldest kept version; nothing to roll back to` : `${name} has no version ${version} (kept: ${cur.versions.map((v) => v.version).join(', ')})`);
      return [{ ...cur, current: to.version }, to];
    });
  }

  async #change<T>(realm: string, name: string, f: (cur: ProgramRecord | undefined) => [ProgramRecord, T]): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const cur = await this.#record(realm, name);
      const [next, out] = f(cur?.rec);
      try {
        if (cur === undefined) await this.kv.create(programKey(realm, name), encode(next));
        else await this.kv.update(programKey(realm, name), encode(next), cur.revision);
        return out;
      } catch (e) {
        if (attempt >= CAS_ATTEMPTS_MAX) throw e;
      }
    }
  }

  /** The realm's programs. */
  async list(realm: string): Promise<ProgramRecord[]> {
    checkName('realm', realm);
    const keys = await this.kv.keys(`${realm}.*`);
    const recs = await Promise.all(keys.map(async (k) => this.#record(realm, k.slice(realm.length + 1)).catch(() => undefined)));
    return recs.flatMap((r) => (r === undefined ? [] : [r.rec])).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Keeps each program's current version in memory from a watch of the bucket, so that a spawn (the
   * scheduler's resolve) costs no KV read once its program is known; a program the watch has not
   * brought yet is read. A version changed by a deploy reaches new spawns once the watch delivers it
   * (a few ms); a removed one stops resolving then too. A watch that ends leaves every spawn to a read.
   * `onCurrent`: a version of one of cluster.config.ts's programs became current (the node fetches its
   * bundle ahead of the first spawn, as it would have the module on disk before deploys existed; a
   * realm's own deploys are fetched on their first spawn).
   */
  async follow(onError: (e: unknown) => void, onCurrent?: (hash: string) => void): Promise<{ stop(): void }> {
    const watch = await this.kv.watch({ include: 'latest' });
    void (async () => {
      try {
        for await (const c of watch) {
          if (c.caughtUp) this.#caughtUp = true;
          const rec = c.value === null ? undefined : decodeRecord(c.value);
          const v = rec?.versions.find((x) => x.version === rec.current);
          if (v === undefined) this.#followed.delete(c.key);
          else {
            this.#followed.set(c.key, refOf(v));
            if (c.key.startsWith(`${CLUSTER_PROGRAMS}.`)) onCurrent?.(v.hash);
          }
        }
      } catch (e) {
        onError(e);
      } finally {
        this.#caughtUp = false;
        this.#followed.clear();
      }
    })();
    return { stop: () => watch.stop() };
  }

  readonly #followed = new Map<string, ProgramRef>();
  /** The watch has delivered the bucket as it was when it started: a key it has not brought is absent (or just deployed). */
  #caughtUp = false;

  /** The programs of cluster.config.ts (every realm's, unless it has its own of the name). */
  async listCluster(): Promise<ProgramRecord[]> {
    const keys = await this.kv.keys(`${CLUSTER_PROGRAMS}.*`);
    const recs = await Promise.all(keys.map(async (k) => this.#record(CLUSTER_PROGRAMS, k.slice(CLUSTER_PROGRAMS.length + 1)).catch(() => undefined)));
    return recs.flatMap((r) => (r === undefined ? [] : [r.rec])).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** What a spawn of `name` in `realm` runs now: the realm's own program, else the cluster's; undefined when neither has one. */
  async resolve(realm: string, name: string): Promise<ProgramRef | undefined> {
    if (!REALM_NAME.test(realm) || !PROGRAM_NAME.test(name)) return undefined;
    // A program of cluster.config.ts the realm has none of (the watch says so once caught up): no read of
    // the realm's absent key, which was a round trip on every such spawn. A realm's own program of the
    // name deployed a moment ago is seen when the watch brings it, as any new version is.
    const cluster = this.#followed.get(programKey(CLUSTER_PROGRAMS, name));
    if (cluster !== undefined && this.#caughtUp && !this.#followed.has(programKey(realm, name))) return cluster;
    return (await this.#current(realm, name)) ?? (await this.#current(CLUSTER_PROGRAMS, name));
  }

  async #current(realm: string, name: string): Promise<ProgramRef | undefined> {
    const known = this.#followed.get(programKey(realm, name));
    if (known !== undefined) return known;
    const r = await this.#record(realm, name);
    const v = r?.rec.versions.find((x) => x.version === r.rec.current);
    return v === undefined ? undefined : refOf(v);
  }

  /** Removes the program from its realm (running procs keep their bundle, cached on their node). */
  async remove(realm: string, name: string): Promise<void> {
    checkName('realm', realm);
    checkName('program', name);
    const cur = await this.#record(realm, name);
    if (cur === undefined) throw new DeployError('unknown-program', `realm ${realm} has no program "${name}"`);
    await this.kv.delete(programKey(realm, name), cur.revision);
    await this.#collect(cur.rec.versions.map((v) => v.hash));
  }

  /** Every program of a removed realm (a realm made later under its name starts with none). */
  async removeRealm(realm: string): Promise<number> {
    const all = await this.list(realm);
    for (const r of all) await this.remove(realm, r.name).catch(() => {});
    return all.length;
  }

  /**
   * A bundle by hash, checked against it (nodes only: hosts reach no JetStream). `chunk`: where it is, if
   * known (one round trip); a bundle read there that does not match is read again through its info.
   */
  async fetch(hash: string, chunk?: string): Promise<Uint8Array> {
    if (!isHash(hash)) throw new DeployError('unknown-program', `"${hash}" is not a program hash`);
    const hinted = chunk === undefined ? null : await this.code.get(hash, { chunk });
    if (hinted !== null && hashOf(hinted) === hash) return (traceSpawn('store.got', hash), hinted);
    const code = await this.code.get(hash);
    traceSpawn('store.got', hash);
    if (code === null) throw new DeployError('unknown-program', `no bundle ${hash} in the store (removed?)`);
    if (hashOf(code) !== hash) throw new DeployError('unknown-program', `the stored bundle ${hash} does not match its hash`);
    return code;
  }

  /** Deletes the bundles no program of any realm still names (content-addressed: realms may share one). */
  async #collect(hashes: string[]): Promise<void> {
    if (hashes.length === 0) return;
    const used = new Set<string>();
    for (const k of await this.kv.keys()) {
      const e = await this.kv.get(k).catch(() => null);
      const rec = e === null ? undefined : decodeRecord(e.value);
      for (const v of rec?.versions ?? []) used.add(v.hash);
    }
    for (const h of new Set(hashes)) if (!used.has(h)) await this.code.delete(h).catch(() => {});
  }
}
