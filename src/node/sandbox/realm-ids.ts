import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Realm uids and gids come from this range, one pair per realm, above what distributions hand out. */
export const REALM_ID_FIRST = 200_000;
export const REALM_ID_LAST = 265_534;
const DIR = 'realm-ids';
/**
 * Where uids are claimed for the whole machine: two clusters on one machine (two data directories)
 * must not give their realms one uid, or a realm of one could read the other's files.
 */
export const MACHINE_CLAIMS_DIR = '/var/lib/sigma-ts/realm-uids';

/**
 * The unprivileged uid (= gid) of each realm's proc hosts: allocated on first use, recorded in the data
 * directory (root only), reused after a restart. Node processes of one cluster on one machine share the
 * directory, so allocation is by exclusive file creation: `uid-<n>` claims a uid, machine-wide (under
 * MACHINE_CLAIMS_DIR, naming the data directory and realm), and `realm-<name>` records the realm's, each
 * created once (O_EXCL) whoever races for it. A claim whose data directory is gone is taken back. An id
 * that /etc/passwd or /etc/group already names is skipped, so a realm never runs as somebody else.
 */
export class RealmIds {
  readonly #dir: string;
  readonly #dataDir: string;
  readonly #known = new Map<string, number>();

  constructor(
    dataDir: string,
    private readonly claims = MACHINE_CLAIMS_DIR,
  ) {
    this.#dataDir = resolve(dataDir);
    this.#dir = join(dataDir, DIR);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    mkdirSync(claims, { recursive: true, mode: 0o700 });
  }

  idOf(realm: string): number {
    const cached = this.#known.get(realm);
    if (cached !== undefined) return cached;
    const recorded = this.#recorded(realm);
    if (recorded !== undefined && this.#holds(recorded, realm)) return this.#remember(realm, recorded);
    // A record from before claims were machine-wide, whose uid another cluster holds now: a new one.
    if (recorded !== undefined) unlinkSync(join(this.#dir, `realm-${realm}`));
    const taken = new Set([...systemIds('/etc/passwd'), ...systemIds('/etc/group')]);
    for (let id = REALM_ID_FIRST; id <= REALM_ID_LAST; id++) {
      const claim = join(this.claims, `uid-${id}`);
      if (taken.has(id) || !this.#claim(claim, realm)) continue;
      if (exclusive(join(this.#dir, `realm-${realm}`), String(id))) return this.#remember(realm, id);
      // Another node recorded this realm first: its uid stands, ours goes back.
      unlinkSync(claim);
      return this.#remember(realm, this.#recorded(realm)!);
    }
    throw new Error(`no realm id left in [${REALM_ID_FIRST}, ${REALM_ID_LAST}]`);
  }

  /** Whether the machine-wide claim of `id` is this data directory's realm's (made now if there was none). */
  #holds(id: number, realm: string): boolean {
    const file = join(this.claims, `uid-${id}`);
    const mine = `${this.#dataDir}\n${realm}`;
    return exclusive(file, mine) || readText(file) === mine;
  }

  /** Claims the uid file for this data directory's realm; a claim left by a data directory that is gone is taken back. */
  #claim(file: string, realm: string): boolean {
    const mine = `${this.#dataDir}\n${realm}`;
    if (exclusive(file, mine)) return true;
    const held = readText(file);
    if (held === undefined || existsSync(held.split('\n')[0]!)) return false;
    // Stale: move it aside atomically, and put it back if a fresh claim had replaced it meanwhile.
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
    } catch {
      return false;
    }
    if (readText(aside) !== held) {
      renameSync(aside, file);
      return false;
    }
    unlinkSync(aside);
    return exclusive(file, mine);
  }

  #recorded(realm: string): number | undefined {
    const file = join(this.#dir, `realm-${realm}`);
    return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
  }

  #remember(realm: string, id: number): number {
    this.#known.set(realm, id);
    return id;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Creates `file` with `text` unless it exists: true when this call created it. Written aside and linked
 * into place, so that nobody reads it empty: created then written, another node on the machine read a
 * realm's uid record between the two as "" (uid 0), and its proc host's sandbox refused to start (exit
 * 120, a CI run of the R3 cluster test).
 */
function exclusive(file: string, text: string): boolean {
  const aside = `${file}.new-${process.pid}`;
  writeFileSync(aside, text, { mode: 0o600 });
  try {
    linkSync(aside, file);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(aside);
  }
}

/** The numeric ids (third field) an /etc/passwd-like file names. */
function systemIds(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => Number(l.split(':')[2]))
    .filter((n) => Number.isInteger(n));
}
