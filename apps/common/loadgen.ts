/**
 * The load generator both apps' mixes run in (apps/<app>/loadgen.ts), in a process of its own:
 * `node loadgen.js <port> <connections> <durationS> [ratePerS]`; prints one JSON line (requests, errors,
 * status codes, duration, every latency in ms).
 *
 * Without a rate: a closed loop, `connections` connections each sending its next request when the last
 * one is answered: on wrk where it is installed (apps/common/wrk.ts: a few µs of CPU per request against
 * autocannon's ~120, on the cores the deployment under test uses), else on autocannon
 * (`SIGMA_LOADGEN=autocannon` forces it). The result says which (`generator`).
 *
 * With a rate: an open loop. Request i is due at start + i / rate (evenly spaced) and goes to the next
 * visitor in turn, over a pool of `connections` keep-alive connections (undici); its latency is measured
 * from when it was due, not from when a connection was free, so queueing anywhere (in the server or
 * waiting for a connection here) counts (no coordinated omission, as wrk2 measures). autocannon's
 * `overallRate` is not used: it lets each connection send its share of a second back to back at the
 * start of that second and then waits, so every second began with a burst of `connections` requests and
 * the percentiles measured how fast a burst drains, not the latency at that rate.
 */
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { wrkAvailable, wrkClosedLoop } from './wrk.js';

/** One request as a mix draws it. */
export interface MixRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A workload: a fixed cycle of tasks, each visitor walks it from the start; `ctx` is the visitor's own. */
export interface Mix<T, C extends object> {
  tasks: readonly T[];
  request(task: T, ctx: C): MixRequest;
}

export interface LoadResult {
  requests: { total: number };
  /** Socket errors (and, in the open loop, requests that failed before an answer). */
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
  /** Seconds. */
  duration: number;
  latenciesMs: number[];
  /** What sent the load: `wrk` or `autocannon` (closed loop), `undici` (open loop). */
  generator?: string;
}

/** The open loop's timer granularity: every tick sends what has fallen due since the last. */
const PACE_TICK_MS = 1;
/** A request not answered within this fails as a timeout (autocannon's default is 10 s too). */
const REQUEST_TIMEOUT_MS = 10_000;

/** Runs the mix as argv says and prints the result as one JSON line. */
export async function main<T, C extends object>(mix: Mix<T, C>): Promise<void> {
  const [port, connections, durationS, rate] = process.argv.slice(2).map(Number) as [number, number, number, number | undefined];
  const url = `http://127.0.0.1:${port}`;
  const r: LoadResult =
    rate !== undefined && rate > 0
      ? { ...(await openLoop(mix, url, connections, durationS, rate)), generator: 'undici' }
      : process.env['SIGMA_LOADGEN'] !== 'autocannon' && (await wrkAvailable())
        ? { ...(await wrkClosedLoop(mix, url, connections, durationS)), generator: 'wrk' }
        : { ...(await closedLoop(mix, url, connections, durationS)), generator: 'autocannon' };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function closedLoop<T, C extends object>(mix: Mix<T, C>, url: string, connections: number, durationS: number): Promise<LoadResult> {
  const requests = mix.tasks.map((task) => ({ setupRequest: (req: object, ctx: C) => ({ ...req, ...mix.request(task, ctx) }) }));
  const latenciesMs: number[] = [];
  const instance = autocannon({ url, connections, duration: durationS, requests });
  // Every response's latency (autocannon's summary has no p95).
  instance.on('response', (_c: unknown, _s: number, _b: number, responseTimeMs: number) => latenciesMs.push(responseTimeMs));
  const r = (await instance) as Omit<LoadResult, 'latenciesMs'>;
  return { requests: r.requests, errors: r.errors, timeouts: r.timeouts, statusCodeStats: r.statusCodeStats, duration: r.duration, latenciesMs };
}

interface Visitor<C> {
  ctx: C;
  next: number;
}

async function openLoop<T, C extends object>(mix: Mix<T, C>, url: string, connections: number, durationS: number, rate: number): Promise<LoadResult> {
  const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const visitors: Array<Visitor<C>> = Array.from({ length: connections }, () => ({ ctx: {} as C, next: 0 }));
  const out: LoadResult = { requests: { total: 0 }, errors: 0, timeouts: 0, statusCodeStats: {}, duration: durationS, latenciesMs: [] };
  const total = Math.floor(rate * durationS);
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  let sent = 0;
  const send = (dueMs: number): void => {
    const v = visitors[sent % visitors.length]!;
    const req = mix.request(mix.tasks[v.next++ % mix.tasks.length]!, v.ctx);
    const p = fire(pool, req, dueMs, out).finally(() => inFlight.delete(p));
    inFlight.add(p);
    sent++;
  };
  while (sent < total) {
    const nowMs = performance.now();
    for (let due = t0 + (sent * 1000) / rate; sent < total && due <= nowMs; due = t0 + (sent * 1000) / rate) send(due);
    await new Promise((r) => setTimeout(r, PACE_TICK_MS));
  }
  await Promise.all(inFlight);
  await pool.close();
  return out;
}

/** One request of the open loop; its latency counts from `dueMs`. */
async function fire(pool: Pool, req: MixRequest, dueMs: number, out: LoadResult): Promise<void> {
  try {
    const res = await pool.request({ method: req.method, path: req.path, headers: req.headers ?? {}, ...(req.body === undefined ? {} : { body: req.body }) });
    await res.body.dump();
    const code = String(res.statusCode);
    (out.statusCodeStats[code] ??= { count: 0 }).count++;
    out.requests.total++;
    out.latenciesMs.push(performance.now() - dueMs);
  } catch (e) {
    if ((e as { code?: string }).code?.includes('TIMEOUT') === true) out.timeouts++;
    else out.errors++;
  }
}
