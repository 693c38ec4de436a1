import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Realm uids and gids come from this range, one pair per realm, above what distributions hand out. */
export const REALM_ID_FIRST = 200_000;
export const REALM_ID_LAST = 265_534;
const DIR = 'realm-ids';

/**
 * The unprivileged uid (= gid) of each realm's proc hosts: allocated on first use, recorded in the data
 * directory (root only), reused after a restart. Node processes of one cluster on one machine share the
 * directory, so allocation is by exclusive file creation: `uid-<n>` claims a uid for one realm and
 * `realm-<name>` records the realm's, each created once (O_EXCL) whoever races for it. An id that
 * /etc/passwd or /etc/group already names is skipped, so a realm never runs as somebody else.
 */
export class RealmIds {
  readonly #dir: string;
  readonly #known = new Map<string, number>();

  constructor(dataDir: string) {
    this.#dir = join(dataDir, DIR);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
  }

  idOf(realm: string): number {
    const known = this.#known.get(realm) ?? this.#recorded(realm);
    if (known !== undefined) return this.#remember(realm, known);
    const taken = new Set([...systemIds('/etc/passwd'), ...systemIds('/etc/group')]);
    for (let id = REALM_ID_FIRST; id <= REALM_ID_LAST; id++) {
      if (taken.has(id) || !exclusive(join(this.#dir, `uid-${id}`), realm)) continue;
      if (exclusive(join(this.#dir, `realm-${realm}`), String(id))) return this.#remember(realm, id);
      // Another node recorded this realm first: its uid stands, ours goes back.
      unlinkSync(join(this.#dir, `uid-${id}`));
      return this.#remember(realm, this.#recorded(realm)!);
    }
    throw new Error(`no realm id left in [${REALM_ID_FIRST}, ${REALM_ID_LAST}]`);
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

/** Creates `file` with `text` unless it exists: true when this call created it. */
function exclusive(file: string, text: string): boolean {
  try {
    writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'EEXIST') return false;
    throw e;
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
