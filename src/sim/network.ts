import type { Clock, Random, Timers } from '../ports/types.js';

/**
 * The simulated network between each NATS client and the one simulated server: a link per client
 * name, with a direction ('up' = client to server, 'down' = server to client). Everything the
 * simulated NATS carries goes through `send`, which is where faults are applied, all drawn from the
 * injected Random and timed by the injected Timers — same seed, same faults.
 *
 * Message kinds, because not every fault makes sense for every message:
 * - 'core': publishes, deliveries, requests and replies — drop, duplicate, reorder, delay all apply.
 * - 'js-api': JetStream/KV calls and their answers, acks — drop (the call then times out, perhaps
 *   after taking effect) and delay apply; never duplicated or reordered (one TCP stream in reality).
 * - 'js-delivery': stream/watch deliveries — delay only: the real client's ordered consumers re-fetch
 *   from the last sequence after a gap, so loss there is not observable.
 * - 'control': subscribe registrations, flush pings, pull credits — delay only.
 * Partitions and the server being down drop everything, whatever the kind.
 */
export type LinkKind = 'core' | 'js-api' | 'js-delivery' | 'control';

export interface LinkFaults {
  /** Extra one-way delay, ms. */
  delayMs?: number;
  /** Extra uniform delay in [0, jitterMs) per message; order on the link is kept unless `reorder`. */
  jitterMs?: number;
  /** Probability in [0, 1] that a 'core' or 'js-api' message is lost. */
  dropRate?: number;
  /** Probability in [0, 1] that a 'core' message arrives twice. */
  duplicateRate?: number;
  /** Lets jittered 'core' messages overtake each other (real NATS never does: a stress fault). */
  reorder?: boolean;
}

export interface NetEvent {
  client: string;
  direction: 'up' | 'down';
  kind: LinkKind;
  subject: string | undefined;
}

/** What a custom hook decides for one message (on top of the configured faults). */
export interface NetVerdict {
  drop?: boolean;
  delayMs?: number;
  duplicate?: boolean;
}

export type NetHook = (e: NetEvent) => NetVerdict | undefined;

export interface NetworkPorts {
  clock: Clock;
  timers: Timers;
  random: Random;
}

export class SimNetwork {
  readonly #clients = new Set<string>();
  readonly #cut = new Set<string>();
  /** Clients whose server died and that have not yet reconnected to another (a simulated cluster). */
  readonly #orphans = new Set<string>();
  readonly #faults = new Map<string, LinkFaults>();
  /** Last arrival time per link direction, to keep links FIFO under jitter. */
  readonly #lastArrivalMs = new Map<string, number>();
  #down = false;
  /** Messages lost to faults or partitions, by kind (for reports). */
  readonly lost = { core: 0, 'js-api': 0, 'js-delivery': 0, control: 0 };

  constructor(
    private readonly ports: NetworkPorts,
    private readonly latencyMs: number,
    /** Called when a client's link goes down or comes back (partition, heal, server down/up). */
    private readonly onLink: (client: string, up: boolean) => void,
    private readonly defaultFaults: LinkFaults = {},
    public hook: NetHook | undefined = undefined,
  ) {
    if (!(latencyMs >= 0)) throw new RangeError(`latencyMs must be >= 0, got ${latencyMs}`);
  }

  register(client: string): void {
    this.#clients.add(client);
  }

  connected(client: string): boolean {
    return !this.#down && !this.#cut.has(client) && !this.#orphans.has(client);
  }

  get down(): boolean {
    return this.#down;
  }

  /** The whole server goes away (or comes back): every client is cut off; state in JetStream stays. */
  setDown(down: boolean): void {
    if (down === this.#down) return;
    const before = [...this.#clients].filter((c) => this.connected(c));
    this.#down = down;
    for (const c of this.#clients) if (!before.includes(c) && this.connected(c)) this.onLink(c, true);
    for (const c of before) if (!this.connected(c)) this.onLink(c, false);
  }

  /** Cuts one client off from the server both ways (or heals it). */
  partition(client: string, cut = true): void {
    const was = this.connected(client);
    if (cut) this.#cut.add(client);
    else this.#cut.delete(client);
    const now = this.connected(client);
    if (was !== now) this.onLink(client, now);
  }

  /** A clustered client loses its server (or is attached to another): apart from partitions, which faults own. */
  orphan(client: string, orphaned: boolean): void {
    const was = this.connected(client);
    if (orphaned) this.#orphans.add(client);
    else this.#orphans.delete(client);
    const now = this.connected(client);
    if (was !== now) this.onLink(client, now);
  }

  setFaults(client: string, faults: LinkFaults | undefined): void {
    if (faults === undefined) this.#faults.delete(client);
    else this.#faults.set(client, faults);
  }

  /** Carries one message over a client's link; `deliver` runs on arrival unless it is lost. */
  send(client: string, direction: 'up' | 'down', kind: LinkKind, subject: string | undefined, deliver: () => void): void {
    if (!this.connected(client)) {
      this.lost[kind]++;
      return;
    }
    const f = this.#faults.get(client) ?? this.defaultFaults;
    const v = this.hook?.({ client, direction, kind, subject }) ?? {};
    const lossy = kind === 'core' || kind === 'js-api';
    if (v.drop === true || (lossy && (f.dropRate ?? 0) > 0 && this.ports.random.next() < f.dropRate!)) {
      this.lost[kind]++;
      return;
    }
    const copies = v.duplicate === true || (kind === 'core' && (f.duplicateRate ?? 0) > 0 && this.ports.random.next() < f.duplicateRate!) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delayMs = this.latencyMs + (f.delayMs ?? 0) + (v.delayMs ?? 0);
      if ((f.jitterMs ?? 0) > 0) delayMs += this.ports.random.next() * f.jitterMs!;
      const link = `${client}/${direction}`;
      let at = this.ports.clock.nowMs() + delayMs;
      if (!(kind === 'core' && f.reorder === true)) at = Math.max(at, this.#lastArrivalMs.get(link) ?? 0);
      this.#lastArrivalMs.set(link, at);
      this.ports.timers.setTimeout(deliver, at - this.ports.clock.nowMs());
    }
  }
}
