/**
 * The closed loop on wrk (Debian's `wrk`, a C load generator; DeathStarBench drives the hotel with its
 * wrk2 fork and Lua scripts). The load generator shares the machine's cores with the deployment under
 * test, and autocannon spends ~120 µs of CPU per request (measured: `time` of the loadgen process over a
 * closed loop) against the deployments' 300-1,100: on two cores that CPU came out of whichever
 * deployment served more requests. wrk spends a few µs.
 *
 * wrk runs one Lua script; this one replays requests generated here from the same mix, in order,
 * cycling: visitors interleaved one request each, with more visitors than connections, so that no
 * visitor has two requests in flight (its cart's add still comes before its checkout). Generating them
 * here keeps one definition of each mix (apps/<app>/loadgen.ts) for both loops.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult, Mix, MixRequest } from './loadgen.js';

/**
 * Visitors: at least two per connection (a visitor's next request is that many requests of the cycle
 * behind its last, so never in flight beside it), up to eight, within a cycle of about 25,000 requests
 * (the hotel's mix has 200 tasks a visitor: 128 visitors; Boutique's 19: 512).
 */
const visitorsFor = (connections: number, tasks: number): number => Math.min(8 * connections, Math.max(2 * connections, Math.floor(25_600 / tasks)));
const TIMEOUT_S = 10;

// Requests are separated by NUL (never in a request); `done` prints one JSON line after wrk's report.
const REPLAY_LUA = `
local reqs, i = {}, 0
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  for r in string.gmatch(data, "([^%z]+)") do reqs[#reqs + 1] = r end
  -- wrk checks the script's request once per thread before it sends any: that call gets the cycle's
  -- last request, and the first one sent is the cycle's first.
  i = #reqs - 1
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
`;

export function wrkAvailable(): Promise<boolean> {
  return new Promise((resolve) => execFile('wrk', ['--version'], (e) => resolve(e === null || (e as { code?: unknown }).code === 1)));
}

/** One raw HTTP/1.1 request (keep-alive is HTTP/1.1's default). */
function raw(req: MixRequest, host: string): string {
  const headers: Record<string, string> = { host, ...(req.headers ?? {}) };
  if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return `${req.method} ${req.path} HTTP/1.1\r\n${lines.join('')}\r\n${req.body ?? ''}`;
}

/** The requests of one cycle: every visitor walks the mix's tasks once, visitors interleaved. */
export function replayCycle<T, C extends object>(mix: Mix<T, C>, host: string, visitors: number): string[] {
  const ctxs = Array.from({ length: visitors }, () => ({}) as C);
  const out: string[] = [];
  for (const task of mix.tasks) for (const ctx of ctxs) out.push(raw(mix.request(task, ctx), host));
  return out;
}

export async function wrkClosedLoop<T, C extends object>(mix: Mix<T, C>, url: string, connections: number, durationS: number): Promise<LoadResult> {
  const u = new URL(url);
  const dir = mkdtempSync(join(tmpdir(), 'sigma-wrk-'));
  try {
    const script = join(dir, 'replay.lua');
    const requests = join(dir, 'requests');
    writeFileSync(script, REPLAY_LUA);
    writeFileSync(requests, replayCycle(mix, u.host, visitorsFor(connections, mix.tasks.length)).join('\0'));
    const args = ['-t1', `-c${connections}`, `-d${durationS}s`, `--timeout`, `${TIMEOUT_S}s`, '-s', script, url, '--', requests];
    const stdout = await new Promise<string>((resolve, reject) => execFile('wrk', args, { maxBuffer: 16 << 20 }, (e, out, err) => (e === null ? resolve(out) : reject(new Error(`wrk ${args.join(' ')}: ${e.message} ${err}`)))));
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { requests: number; duration_us: number; connect: number; read: number; write: number; status: number; timeout: number };
    return {
      requests: { total: r.requests },
      errors: r.connect + r.read + r.write + r.status,
      timeouts: r.timeout,
      statusCodeStats: {},
      duration: r.duration_us / 1e6,
      latenciesMs: [],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
