import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataPathStatus } from '../datapath/status.js';

/** Latency buckets, seconds: from a data-path round trip (tens of µs) to a slow chain. */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsSources {
  node: string;
  /** The node's data path (pools, kernel counters), or undefined without one. */
  datapath: () => DataPathStatus | undefined;
}

/**
 * The node's `/metrics` (Prometheus text, prom-client): the gateway's requests, latencies and errors
 * per route and per target proc; the data path's BPF per-CPU counters (summed over CPUs), pool use;
 * procs per realm and spawn / exit counts on this node. Every series carries `node`.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'realm' | 'route' | 'code'>;
  readonly latency: Histogram<'realm' | 'route'>;
  readonly errors: Counter<'realm' | 'route' | 'kind'>;
  readonly procCalls: Counter<'realm' | 'proc' | 'outcome'>;
  readonly procLatency: Histogram<'realm' | 'proc'>;
  readonly inFlight: Gauge;
  readonly spawns: Counter<'realm'>;
  readonly exits: Counter<'realm' | 'kind'>;
  readonly #live = new Map<string, number>();

  constructor(src: MetricsSources) {
    const r = this.registry;
    r.setDefaultLabels({ node: src.node });
    this.requests = new Counter({ name: 'sigma_gateway_requests_total', help: 'HTTP requests answered, by route and status code', labelNames: ['realm', 'route', 'code'], registers: [r] });
    this.latency = new Histogram({ name: 'sigma_gateway_request_seconds', help: 'From the request head to the last byte of the answer handed to the kernel', labelNames: ['realm', 'route'], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.errors = new Counter({ name: 'sigma_gateway_errors_total', help: 'Requests that failed, by kind (not-found, too-large, unavailable, proc-failed, deadline, slow-client, ...)', labelNames: ['realm', 'route', 'kind'], registers: [r] });
    this.procCalls = new Counter({ name: 'sigma_gateway_proc_calls_total', help: 'Calls from the gateway into a route target (the first stage of a chain), by outcome', labelNames: ['realm', 'proc', 'outcome'], registers: [r] });
    this.procLatency = new Histogram({ name: 'sigma_gateway_proc_seconds', help: 'Data-path round trip from the gateway to a target proc and back (a whole chain)', labelNames: ['realm', 'proc'], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.inFlight = new Gauge({ name: 'sigma_gateway_requests_in_flight', help: 'Requests between their head and their answer (bounded by requestsInFlightMax)', registers: [r] });
    this.spawns = new Counter({ name: 'sigma_procs_started_total', help: 'Procs started on this node', labelNames: ['realm'], registers: [r] });
    this.exits = new Counter({ name: 'sigma_procs_exited_total', help: 'Procs that exited on this node, by status kind', labelNames: ['realm', 'kind'], registers: [r] });
    const live = this.#live;
    new Gauge({
      name: 'sigma_procs',
      help: 'Procs running on this node, per realm (started since the node came up, minus exited)',
      labelNames: ['realm'],
      registers: [r],
      collect() {
        this.reset();
        for (const [realm, n] of live) this.set({ realm }, n);
      },
    });
    const dpGauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, st: DataPathStatus) => void): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          this.reset();
          const st = src.datapath();
          if (st !== undefined) fill(this, st);
        },
      });
    };
    dpGauge('sigma_datapath_kernel_messages', 'Descriptors the BPF verdict judged (per-CPU counters summed), since the node started', [], (g, st) => st.kernel !== undefined && g.set(st.kernel.msgs));
    dpGauge('sigma_datapath_kernel_bytes', 'Payload bytes the descriptors the verdict passed named (per-CPU counters summed)', [], (g, st) => st.kernel !== undefined && g.set(st.kernel.bytes ?? 0));
    dpGauge('sigma_datapath_kernel_rejects', 'Descriptors the verdict refused (per-CPU counters summed)', [], (g, st) => st.kernel !== undefined && g.set(st.kernel.rejects));
    dpGauge('sigma_datapath_hub_routed', 'Descriptors the userspace hub routed', [], (g, st) => g.set(st.hubRouted));
    dpGauge('sigma_datapath_violations', 'Descriptors refused by the kernel or the hub, by reason', ['reason'], (g, st) => {
      for (const [reason, n] of Object.entries(st.violations)) g.set({ reason }, n);
    });
    dpGauge('sigma_pool_bytes_used', 'Bytes of the realm pool in use on this node', ['realm'], (g, st) => {
      for (const [realm, p] of Object.entries(st.pools)) g.set({ realm }, p.bytesUsed);
    });
    dpGauge('sigma_pool_bytes_total', 'Size of the realm pool on this node', ['realm'], (g, st) => {
      for (const [realm, p] of Object.entries(st.pools)) g.set({ realm }, p.bytesTotal);
    });
    dpGauge('sigma_datapath_endpoints', 'Data-path endpoints on this node', [], (g, st) => g.set(st.endpoints));
  }

  procStarted(realm: string): void {
    this.spawns.inc({ realm });
    this.#live.set(realm, (this.#live.get(realm) ?? 0) + 1);
  }

  procExited(realm: string, kind: string): void {
    this.exits.inc({ realm, kind });
    const n = (this.#live.get(realm) ?? 0) - 1;
    if (n <= 0) this.#live.delete(realm);
    else this.#live.set(realm, n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
