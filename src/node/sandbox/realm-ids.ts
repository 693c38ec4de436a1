import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Realm uids and gids come from this range, one pair per realm, above what distributions hand out. */
export const REALM_ID_FIRST = 200_000;
export const REALM_ID_LAST = 265_534;
const FILE = 'realm-ids.json';

/**
 * The unprivileged uid (= gid) of each realm's proc hosts on this node: allocated on first use, recorded
 * in the node's data directory (readable by root only), reused after a restart. An id that /etc/passwd
 * or /etc/group already names is skipped, so a realm never runs as somebody else.
 */
export class RealmIds {
  readonly #file: string;
  readonly #ids: Map<string, number>;

  constructor(dataDir: string) {
    this.#file = join(dataDir, FILE);
    this.#ids = new Map(existsSync(this.#file) ? Object.entries(JSON.parse(readFileSync(this.#file, 'utf8')) as Record<string, number>) : []);
  }

  idOf(realm: string): number {
    const known = this.#ids.get(realm);
    if (known !== undefined) return known;
    const taken = new Set([...this.#ids.values(), ...systemIds('/etc/passwd'), ...systemIds('/etc/group')]);
    let id = REALM_ID_FIRST;
    while (taken.has(id)) id++;
    if (id > REALM_ID_LAST) throw new Error(`no realm id left in [${REALM_ID_FIRST}, ${REALM_ID_LAST}]`);
    this.#ids.set(realm, id);
    const tmp = `${this.#file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.#ids)), { mode: 0o600 });
    renameSync(tmp, this.#file);
    return id;
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
