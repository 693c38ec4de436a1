import type { RouteRecord } from '../control/protocol/index.js';
import { assert } from '../assert.js';

/** A route as the gateway matches it: the pattern split into segments once. */
interface Compiled {
  route: RouteRecord;
  /** Literal segments, or null for a `:param` segment. */
  segments: Array<string | null>;
  params: string[];
  /** A trailing `/*`: any rest of the path. */
  rest: boolean;
}

export interface Match {
  route: RouteRecord;
  params: Record<string, string>;
}

/**
 * Every realm's routes, as the routes bucket holds them (key "<realm>.<name>"). A request matches the
 * most specific route: literal segments beat `:params`, which beat a trailing `/*`; a route naming a
 * host beats one that does not; ties go to the route added first. Pure: no I/O, no clock.
 */
export class RouteTable {
  readonly #byKey = new Map<string, Compiled>();

  put(key: string, route: RouteRecord): void {
    const trimmed = route.path.endsWith('/*') ? route.path.slice(0, -2) : route.path;
    const parts = trimmed.split('/').filter((s) => s.length > 0);
    const segments = parts.map((s) => (s.startsWith(':') ? null : s));
    const params = parts.filter((s) => s.startsWith(':')).map((s) => s.slice(1));
    this.#byKey.delete(key); // a changed route goes to the end: it is newer
    this.#byKey.set(key, { route, segments, params, rest: route.path.endsWith('/*') });
  }

  delete(key: string): boolean {
    return this.#byKey.delete(key);
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Realms with at least one route (their gateway endpoints stay open). */
  realms(): Set<string> {
    return new Set([...this.#byKey.values()].map((c) => c.route.realm));
  }

  routes(): RouteRecord[] {
    return [...this.#byKey.values()].map((c) => c.route);
  }

  /** `path` without the query string; `host` without the port, lower case. Undefined: 404. */
  match(method: string, host: string | undefined, path: string): Match | undefined {
    const parts = path.split('/').filter((s) => s.length > 0);
    let best: { c: Compiled; score: number; params: Record<string, string> } | undefined;
    for (const c of this.#byKey.values()) {
      const r = c.route;
      if (r.method !== '*' && r.method !== method && !(r.method === 'GET' && method === 'HEAD')) continue;
      if (r.host !== undefined && r.host !== host) continue;
      const params = matchSegments(c, parts);
      if (params === undefined) continue;
      // Specificity: literal segments count most, then params; exact beats rest; a host adds a little.
      const literals = c.segments.filter((s) => s !== null).length;
      const score = literals * 4096 + c.segments.length * 16 + (c.rest ? 0 : 8) + (r.host === undefined ? 0 : 1) + (r.method === '*' ? 0 : 2);
      if (best === undefined || score > best.score) best = { c, score, params };
    }
    return best === undefined ? undefined : { route: best.c.route, params: best.params };
  }
}

function matchSegments(c: Compiled, parts: string[]): Record<string, string> | undefined {
  if (c.rest ? parts.length < c.segments.length : parts.length !== c.segments.length) return undefined;
  const values: string[] = [];
  for (let i = 0; i < c.segments.length; i++) {
    const s = c.segments[i];
    if (s === null) values.push(safeDecode(parts[i]!));
    else if (s !== parts[i]) return undefined;
  }
  assert(values.length === c.params.length, 'one value per :param');
  const params: Record<string, string> = {};
  c.params.forEach((p, i) => (params[p] = values[i]!));
  if (c.rest) params['*'] = parts.slice(c.segments.length).join('/');
  return params;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
