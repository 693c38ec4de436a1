/**
 * Deployed programs on a node's disk: `<dataDir>/programs/<realm>/<hash>.mjs`, fetched from the store
 * by the node (root, the control plane's NATS user) on first use; hosts never reach the store (their
 * NATS user has no JetStream) and load the file. A realm's directory belongs to root with the realm's
 * group, 0750: its hosts (uid = gid of the realm) may read it, nobody else's may, and nobody but the node
 * may write there (and Landlock gives hosts read-only access to their own realm's directory only).
 * An entry is checked against its hash the first time this process uses it; one that does not match is
 * fetched again. This file's job is binding to the real world.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../assert.js';
import { traceSpawn } from '../spawn-trace.js';
import { hashOf, isHash, linkSdk } from '../programs/bundle.js';
import { REALM_NAME } from '../control/names.js';
import type { ProgramFiles } from './manager/index.js';

export const PROGRAMS_DIR = 'programs';
const TRAVERSE_ONLY = 0o711;
const REALM_GROUP_READ = 0o750;
const OWNER_ONLY = 0o700;
const READ_ONLY = 0o444;
/** Bundles fetched ahead of their first spawn, root's only until a realm's directory gets a copy. */
const STAGED_DIR = '.staged';

export interface ProgramCacheOptions {
  dataDir: string;
  /** The bundle named `hash`, already checked against it (ProgramStore.fetch refuses one that does not match); `chunk`: where it is in the store, if known. */
  fetch(hash: string, chunk?: string): Promise<Uint8Array>;
  /** The gid of a realm's hosts (sandboxed nodes); absent: hosts run as the node's user. */
  groupOf?: (realm: string) => number | undefined;
}

export class ProgramCache implements ProgramFiles {
  readonly root: string;
  /** Files this process has checked against their hash (or written). */
  readonly #checked = new Set<string>();
  readonly #fetching = new Map<string, Promise<string>>();
  readonly #dirs = new Set<string>();
  /** Fetches, and entries found corrupt and fetched again (for tests and status). */
  fetched = 0;
  refetched = 0;

  constructor(private readonly o: ProgramCacheOptions) {
    this.root = join(o.dataDir, PROGRAMS_DIR);
    mkdirSync(this.root, { recursive: true, mode: TRAVERSE_ONLY });
    chmodSync(this.root, TRAVERSE_ONLY);
    // Bundles import `sigma-ts`; Node looks for it in node_modules above the file: this package.
    linkSdk(this.root);
    mkdirSync(join(this.root, STAGED_DIR), { recursive: true, mode: OWNER_ONLY });
  }

  /**
   * Fetches a bundle ahead of its first spawn (a version the node saw become current): that spawn then
   * copies it from the node's disk instead of reading the store, in whichever realm it comes. Best effort.
   */
  prefetch(hash: string): void {
    const staged = this.#staged(hash);
    if (!isHash(hash) || this.#prefetching.has(hash) || existsSync(staged)) return;
    const p = this.o
      .fetch(hash)
      .then((code) => {
        if (hashOf(code) !== hash) return;
        const tmp = `${staged}.${process.pid}.tmp`;
        writeFileSync(tmp, code, { mode: OWNER_ONLY });
        renameSync(tmp, staged);
      })
      .catch(() => {})
      .finally(() => this.#prefetching.delete(hash));
    this.#prefetching.set(hash, p);
  }

  readonly #prefetching = new Map<string, Promise<void>>();

  #staged(hash: string): string {
    return join(this.root, STAGED_DIR, `${hash}.mjs`);
  }

  /** The realm's cache directory, made with its owner and mode if missing. */
  dirFor(realm: string): string {
    assert(REALM_NAME.test(realm), `a realm name is a token: ${realm}`);
    const dir = join(this.root, realm);
    if (this.#dirs.has(dir)) return dir; // made (and owned) by this process already: no syscalls per spawn
    // Nodes sharing a data directory (one machine, a test cluster) may make it at the same moment.
    try {
      mkdirSync(dir, { mode: OWNER_ONLY });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const gid = this.o.groupOf?.(realm);
    if (gid !== undefined) {
      chownSync(dir, 0, gid);
      chmodSync(dir, REALM_GROUP_READ);
    }
    this.#dirs.add(dir);
    return dir;
  }

  path(realm: string, hash: string, chunk?: string): Promise<string> {
    if (!isHash(hash) || !REALM_NAME.test(realm)) return Promise.reject(new Error(`bad program reference ${realm}/${hash}`));
    const file = join(this.dirFor(realm), `${hash}.mjs`);
    if (this.#checked.has(file)) return Promise.resolve(file);
    let p = this.#fetching.get(file);
    if (p === undefined) {
      p = this.#load(file, hash, chunk).finally(() => this.#fetching.delete(file));
      this.#fetching.set(file, p);
    }
    return p;
  }

  async #load(file: string, hash: string, chunk?: string): Promise<string> {
    if (existsSync(file)) {
      if (hashOf(readFileSync(file)) === hash) {
        this.#checked.add(file);
        return file;
      }
      this.refetched++;
    }
    await this.#prefetching.get(hash);
    const staged = existsSync(this.#staged(hash)) ? readFileSync(this.#staged(hash)) : undefined;
    // Either checked here or by the store's fetch, which refuses a bundle that does not match its hash.
    const code = staged !== undefined && hashOf(staged) === hash ? staged : await this.o.fetch(hash, chunk);
    traceSpawn('cache.fetched', hash);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code, { mode: READ_ONLY });
    chmodSync(tmp, READ_ONLY);
    renameSync(tmp, file);
    traceSpawn('cache.written', hash);
    this.fetched++;
    this.#checked.add(file);
    return file;
  }
}
