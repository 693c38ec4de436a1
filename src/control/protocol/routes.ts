import { isInt, isObj, isStr, type Decoder } from './wire.js';

/**
 * Gateway routes (src/gateway/): HTTP method + path pattern of a realm -> a service proc by name, or a
 * chain of procs (the first stage is called; each stage forwards the same pool buffer to the next with
 * ctx.forward, the last answers). Durable in the `sigma_routes` bucket as "<realm>.<name>" -> RouteRecord,
 * written by `sigma route add|rm` and by cluster.config.ts at cluster start, watched by every node's gateway.
 */
export const ROUTES_BUCKET = 'sigma_routes';

export const ROUTE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', '*'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

/**
 * What the proc receives: `body` the raw request body (a chain of stages, echo-like services); `http`
 * the request's method, URL and headers framed before the body (src/gateway/envelope.ts), and the
 * answer may carry a status and headers the same way.
 */
export type RouteEnvelope = 'body' | 'http';

export interface RouteRecord {
  realm: string;
  /** Unique within the realm: the key of the route. */
  name: string;
  method: RouteMethod;
  /** `/exact`, `/product/:id` (one segment), or a trailing `/*` (any rest). */
  path: string;
  /** Matches the Host header (without port) when set: lets realms share one port by host name. */
  host?: string;
  /** One service name (`svc` or `realm/svc` when exported to this realm), or the stages of a chain. */
  target: string[];
  envelope: RouteEnvelope;
  /** Larger request bodies get 413 before any of them enters the pool. */
  bodyBytesMax: number;
  /** The whole call (every stage of a chain) must answer within this; else 504. */
  deadlineMs: number;
}

export const ROUTE_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const ROUTE_PATH_RE = /^\/[A-Za-z0-9._~!$&'()+,;=:@%/-]*(\/\*)?$/;
/** Stages of one chain. */
export const ROUTE_STAGES_MAX = 16;
export const DEFAULT_ROUTE_BODY_BYTES_MAX = 1 << 20;
/** A body is at most a quarter of the smallest pool a realm may have (src/datapath/pool-layout.ts): 16 MiB here. */
export const ROUTE_BODY_BYTES_MAX = 16 << 20;
export const DEFAULT_ROUTE_DEADLINE_MS = 5_000;
export const ROUTE_DEADLINE_MS_MAX = 60_000;
/** Routes one realm may hold (a bound on what every gateway keeps in memory). */
export const ROUTES_PER_REALM_MAX = 1_024;

export const routeKey = (realm: string, name: string): string => `${realm}.${name}`;

const TARGET_RE = /^([a-z0-9][a-z0-9-]{0,62}\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HOST_RE = /^[A-Za-z0-9.-]{1,253}$/;

/** What a route add may say; everything but realm, name, path and target has a default. */
export interface RouteInput {
  realm: string;
  name: string;
  method?: string;
  path: string;
  host?: string;
  /** Default: the service of the route's own name. */
  target?: string | string[];
  envelope?: string;
  bodyBytesMax?: number;
  deadlineMs?: number;
}

export class RouteError extends Error {
  readonly type = 'bad-route';
  constructor(readonly field: string, detail: string) {
    super(`route: ${field} ${detail}`);
    this.name = 'RouteError';
  }
}

/** Validates a route and fills its defaults; a RouteError names the field and what would be accepted. */
export function parseRoute(r: RouteInput): RouteRecord | RouteError {
  if (!isStr(r.realm) || !ROUTE_NAME_RE.test(r.realm)) return new RouteError('realm', `must match ${ROUTE_NAME_RE}`);
  if (!isStr(r.name) || !ROUTE_NAME_RE.test(r.name)) return new RouteError('name', `must match ${ROUTE_NAME_RE}, got ${JSON.stringify(r.name)}`);
  const method = (r.method ?? 'GET').toUpperCase();
  if (!(ROUTE_METHODS as readonly string[]).includes(method)) return new RouteError('method', `must be one of ${ROUTE_METHODS.join(', ')}, got ${JSON.stringify(r.method)}`);
  if (!isStr(r.path) || !ROUTE_PATH_RE.test(r.path) || r.path.length > 512 || r.path === '/metrics') return new RouteError('path', `must start with /, use URL path characters, end in /* at most, not be /metrics (the gateway's own), got ${JSON.stringify(r.path)}`);
  if (r.host !== undefined && (!isStr(r.host) || !HOST_RE.test(r.host))) return new RouteError('host', `must be a host name, got ${JSON.stringify(r.host)}`);
  const target = r.target === undefined ? [r.name] : typeof r.target === 'string' ? r.target.split(',').map((s) => s.trim()) : r.target;
  if (!Array.isArray(target) || target.length < 1 || target.length > ROUTE_STAGES_MAX || !target.every((t) => isStr(t) && TARGET_RE.test(t))) return new RouteError('target', `must be 1 to ${ROUTE_STAGES_MAX} service names (name or realm/name), got ${JSON.stringify(r.target)}`);
  const envelope = r.envelope ?? 'body';
  if (envelope !== 'body' && envelope !== 'http') return new RouteError('envelope', `must be body or http, got ${JSON.stringify(r.envelope)}`);
  const bodyBytesMax = r.bodyBytesMax ?? DEFAULT_ROUTE_BODY_BYTES_MAX;
  if (!isInt(bodyBytesMax) || bodyBytesMax < 0 || bodyBytesMax > ROUTE_BODY_BYTES_MAX) return new RouteError('bodyBytesMax', `must be an integer in [0, ${ROUTE_BODY_BYTES_MAX}], got ${r.bodyBytesMax}`);
  const deadlineMs = r.deadlineMs ?? DEFAULT_ROUTE_DEADLINE_MS;
  if (!isInt(deadlineMs) || deadlineMs < 1 || deadlineMs > ROUTE_DEADLINE_MS_MAX) return new RouteError('deadlineMs', `must be an integer in [1, ${ROUTE_DEADLINE_MS_MAX}], got ${r.deadlineMs}`);
  return { realm: r.realm, name: r.name, method: method as RouteMethod, path: r.path, ...(r.host === undefined ? {} : { host: r.host.toLowerCase() }), target, envelope, bodyBytesMax, deadlineMs };
}

/** A stored route, checked again as it is read (the bucket is the admin's, but a bad record must not stop a gateway). */
export const routeRecord: Decoder<RouteRecord> = (v) => {
  if (!isObj(v)) return undefined;
  const r = parseRoute(v as unknown as RouteInput);
  return r instanceof RouteError ? undefined : r;
};
