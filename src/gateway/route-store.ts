import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { decodeJson, encode, parseRoute, RouteError, routeKey, routeRecord, ROUTES_BUCKET, ROUTES_PER_REALM_MAX, type RouteInput, type RouteRecord } from '../control/protocol/index.js';
import type { Bus, Kv } from '../nats/types.js';

const OPEN_WAIT_MS = 10_000;
const OPEN_RETRY_MS = 100;

export class RouteConflictError extends Error {
  readonly type = 'route-conflict';
  constructor(detail: string) {
    super(detail);
    this.name = 'RouteConflictError';
  }
}

export class RouteLimitError extends Error {
  readonly type = 'route-limit';
  constructor(realm: string) {
    super(`realm ${realm} already has ${ROUTES_PER_REALM_MAX} routes; remove some first`);
    this.name = 'RouteLimitError';
  }
}

export type RouteStoreError = RouteError | RouteConflictError | RouteLimitError;

/**
 * The routes bucket, always through one realm: every read and write names the realm and touches only
 * keys "<realm>.*", so a caller acting for realm B can neither see nor change realm A's routes. A route
 * whose (host, method, path) another realm already serves is refused without naming that realm.
 */
export class RouteStore {
  private constructor(private readonly kv: Kv) {}

  /** Retries while JetStream is not answering yet (a server just started says "no responders"), up to OPEN_WAIT_MS. */
  static async open(bus: Bus): Promise<RouteStore> {
    for (let waitedMs = 0; ; waitedMs += OPEN_RETRY_MS) {
      try {
        return new RouteStore(await bus.kv(ROUTES_BUCKET));
      } catch (e) {
        if ((e as { type?: string }).type !== 'no-responders' || waitedMs >= OPEN_WAIT_MS) throw e;
        await new Promise((r) => setTimeout(r, OPEN_RETRY_MS));
      }
    }
  }

  async add(input: RouteInput): Promise<Either<RouteStoreError, RouteRecord>> {
    const r = parseRoute(input);
    if (r instanceof RouteError) return left(r);
    const mine = await this.list(r.realm);
    if (mine.length >= ROUTES_PER_REALM_MAX && !mine.some((m) => m.name === r.name)) return left(new RouteLimitError(r.realm));
    for (const key of await this.kv.keys()) {
      if (key === routeKey(r.realm, r.name)) continue;
      const other = await this.#get(key);
      if (other !== undefined && other.method === r.method && other.path === r.path && other.host === r.host) {
        return left(new RouteConflictError(other.realm === r.realm ? `route ${other.name} already serves ${r.method} ${r.path}` : `${r.method} ${r.path}${r.host === undefined ? '' : ` on ${r.host}`} is taken; choose another path or a host name`));
      }
    }
    await this.kv.put(routeKey(r.realm, r.name), encode(r));
    return right(r);
  }

  async list(realm: string): Promise<RouteRecord[]> {
    const out: RouteRecord[] = [];
    for (const key of await this.kv.keys(`${realm}.*`)) {
      const r = await this.#get(key);
      if (r !== undefined && r.realm === realm) out.push(r);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** False when the realm has no route of that name. */
  async remove(realm: string, name: string): Promise<boolean> {
    const key = routeKey(realm, name);
    if ((await this.kv.get(key)) === null) return false;
    await this.kv.delete(key);
    return true;
  }

  /** cluster.config.ts's routes at cluster start: written as given (the config is their source). */
  async seed(routes: readonly RouteRecord[]): Promise<void> {
    for (const r of routes) await this.kv.put(routeKey(r.realm, r.name), encode(r));
  }

  async #get(key: string): Promise<RouteRecord | undefined> {
    const e = await this.kv.get(key);
    return e === null ? undefined : routeRecord(decodeJson(e.value));
  }
}
