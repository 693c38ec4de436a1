import type { Command } from 'commander';
import type { ClusterConfig } from '../config/cluster.js';
import { table } from './format.js';

type Out = (human: string, data: unknown) => void;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text to samples (the subset prom-client writes: no timestamps, no escapes in our labels). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

/** The upper bound of the bucket holding quantile q of a histogram's samples (seconds), or NaN. */
function quantile(buckets: Sample[], q: number): number {
  const sorted = buckets.map((b) => ({ le: Number(b.labels['le'] === '+Inf' ? Infinity : b.labels['le']), n: b.value })).sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.n ?? 0;
  if (total === 0) return Number.NaN;
  return sorted.find((b) => b.n >= q * total)?.le ?? Number.NaN;
}

/** One screen: per route (all nodes) requests, errors, latency buckets; per node pools, procs, data-path counters. */
export function render(byNode: Array<{ node: string; samples: Sample[] | string }>): { text: string; data: unknown } {
  const routes = new Map<string, { requests: number; errors: number; buckets: Sample[] }>();
  const nodes: Array<Record<string, unknown>> = [];
  for (const { node, samples } of byNode) {
    if (typeof samples === 'string') {
      nodes.push({ node, status: samples });
      continue;
    }
    const sum = (name: string, f: (s: Sample) => boolean = () => true): number => samples.filter((s) => s.name === name && f(s)).reduce((n, s) => n + s.value, 0);
    for (const s of samples) {
      const key = `${s.labels['realm']}/${s.labels['route']}`;
      if (s.labels['route'] === undefined || s.labels['route'] === '') continue;
      const r = routes.get(key) ?? { requests: 0, errors: 0, buckets: [] };
      if (s.name === 'sigma_gateway_requests_total') r.requests += s.value;
      if (s.name === 'sigma_gateway_errors_total') r.errors += s.value;
      if (s.name === 'sigma_gateway_request_seconds_bucket') r.buckets.push(s);
      routes.set(key, r);
    }
    const perRealm = (name: string): string => samples.filter((s) => s.name === name).map((s) => `${s.labels['realm']}=${Math.round(s.value)}`).join(' ');
    nodes.push({ node, inFlight: sum('sigma_gateway_requests_in_flight'), procs: perRealm('sigma_procs'), poolKiB: samples.filter((s) => s.name === 'sigma_pool_bytes_used').map((s) => `${s.labels['realm']}=${Math.round(s.value / 1024)}`).join(' '), started: sum('sigma_procs_started_total'), exited: sum('sigma_procs_exited_total'), kernelMsgs: sum('sigma_datapath_kernel_messages'), rejects: sum('sigma_datapath_kernel_rejects') + sum('sigma_datapath_violations') });
  }
  const rows = [...routes].map(([route, r]) => {
    const byLe = new Map<string, Sample>();
    for (const b of r.buckets) {
      const prev = byLe.get(b.labels['le']!);
      byLe.set(b.labels['le']!, { ...b, value: (prev?.value ?? 0) + b.value });
    }
    const ms = (q: number): string => {
      const all = [...byLe.values()];
      const v = quantile(all, q);
      const top = Math.max(...all.map((b) => Number(b.labels['le'])).filter(Number.isFinite));
      return Number.isNaN(v) ? '-' : Number.isFinite(v) ? `<=${v * 1000}` : `>${top * 1000}`;
    };
    return { route, requests: r.requests, errors: r.errors, p50Ms: ms(0.5), p99Ms: ms(0.99) };
  });
  const text = `${table(rows, ['route', 'requests', 'errors', 'p50Ms', 'p99Ms'])}\n\n${table(nodes, ['node', 'status', 'inFlight', 'procs', 'poolKiB', 'started', 'exited', 'kernelMsgs', 'rejects'])}`;
  return { text, data: { routes: rows, nodes } };
}

/**
 * `sigma top`: every node's gateway /metrics (the ports of cluster.config.ts), as one screen, refreshed
 * every --interval-ms (once with --once or --json).
 */
export function topCommand(program: Command, loadConfig: () => Promise<ClusterConfig>, out: Out, json: () => boolean): void {
  program
    .command('top')
    .description("routes, procs, pools and data-path counters from every node's gateway /metrics")
    .option('--once', 'print one screen and exit')
    .option('--interval-ms <ms>', 'refresh period', '2000')
    .option('--host <host>', 'where the gateways listen', '127.0.0.1')
    .action(async (o: { once?: boolean; intervalMs: string; host: string }) => {
      const config = await loadConfig();
      const screen = async (): Promise<{ text: string; data: unknown }> =>
        render(
          await Promise.all(
            config.nodes.map(async (n) => {
              try {
                const res = await fetch(`http://${o.host}:${n.gatewayPort}/metrics`, { signal: AbortSignal.timeout(2_000) });
                return { node: n.id, samples: parseMetrics(await res.text()) };
              } catch (e) {
                return { node: n.id, samples: `unreachable (${(e as Error).message})` };
              }
            }),
          ),
        );
      if (o.once === true || json()) {
        const s = await screen();
        return out(s.text, s.data);
      }
      for (;;) {
        const s = await screen();
        process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}\n\n${s.text}\n`);
        await new Promise((r) => setTimeout(r, Math.max(200, Number(o.intervalMs) || 2000)));
      }
    });
}
