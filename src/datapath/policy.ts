/**
 * Who may send a descriptor to whom: the realm rule both modes enforce (the BPF program in the kernel
 * with its identity and filter maps, the hub in userspace). Pure, bounded.
 *
 * A sender S in realm X may reach destination D in realm Y when
 *   - X = Y ('local'), or
 *   - D is exported to X ('exported': a service offered to another realm), or
 *   - S is exported to Y ('reply': an exported service answers, and returns credits to, its callers).
 * Everything else is 'cross-realm' and dropped; an unregistered D is 'unknown-dst'.
 */
export type RouteVerdict = 'local' | 'exported' | 'reply' | 'unknown-dst' | 'cross-realm';

export const DEFAULT_ENDPOINTS_MAX = 65_536;
export const DEFAULT_EXPORTS_PER_ENDPOINT_MAX = 64;

interface Entry {
  realm: string;
  exportedTo: Set<string>;
}

export type PolicyResult = { ok: true } | { ok: false; reason: string };

export class RealmTable {
  readonly #entries = new Map<number, Entry>();

  constructor(readonly endpointsMax = DEFAULT_ENDPOINTS_MAX, readonly exportsPerEndpointMax = DEFAULT_EXPORTS_PER_ENDPOINT_MAX) {}

  register(endpoint: number, realm: string): PolicyResult {
    if (this.#entries.has(endpoint)) return { ok: false, reason: `endpoint ${endpoint} is already registered (realm ${this.#entries.get(endpoint)!.realm}); unregister it first` };
    if (this.#entries.size >= this.endpointsMax) return { ok: false, reason: `the node already has ${this.endpointsMax} endpoints; raise endpointsMax or stop idle procs` };
    this.#entries.set(endpoint, { realm, exportedTo: new Set() });
    return { ok: true };
  }

  unregister(endpoint: number): void {
    this.#entries.delete(endpoint);
  }

  /** Makes `endpoint` reachable from `realm` (and lets it answer that realm's endpoints). */
  export(endpoint: number, realm: string): PolicyResult {
    const e = this.#entries.get(endpoint);
    if (e === undefined) return { ok: false, reason: `endpoint ${endpoint} is not registered` };
    if (e.realm === realm) return { ok: true };
    if (!e.exportedTo.has(realm) && e.exportedTo.size >= this.exportsPerEndpointMax) {
      return { ok: false, reason: `endpoint ${endpoint} is already exported to ${this.exportsPerEndpointMax} realms` };
    }
    e.exportedTo.add(realm);
    return { ok: true };
  }

  unexport(endpoint: number, realm: string): void {
    this.#entries.get(endpoint)?.exportedTo.delete(realm);
  }

  realmOf(endpoint: number): string | undefined {
    return this.#entries.get(endpoint)?.realm;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The verdict for a descriptor from `sender` (an identity vouched for by the transport) to `dst`. */
  route(sender: number, dst: number): RouteVerdict {
    const s = this.#entries.get(sender);
    const d = this.#entries.get(dst);
    if (d === undefined || s === undefined) return 'unknown-dst';
    if (s.realm === d.realm) return 'local';
    if (d.exportedTo.has(s.realm)) return 'exported';
    if (s.exportedTo.has(d.realm)) return 'reply';
    return 'cross-realm';
  }
}
