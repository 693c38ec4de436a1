import type { NodeRecord } from './protocol/index.js';

/**
 * Node liveness by heartbeats, on one process's clock. A node is down when it has been silent for the
 * timeout while other nodes' heartbeats arrived, counted from when they flow again: when the nodes
 * bucket's stream has no leader every heartbeat stops at once, which says nothing of the nodes (the
 * chaos partition scenario had all three nodes declared down, the scheduler's own included, and 64
 * running procs lost). Every node keeps one from the heartbeats on core NATS, so that the scheduler it
 * may become starts from what it has seen rather than from nothing (a successor that gave every node
 * a whole timeout from its recovery took that long to see the old leader's machine dead).
 */
export class Liveness {
  /** Node -> when its last heartbeat arrived. */
  readonly lastSeen = new Map<string, number>();
  /** Each node's last heartbeat as `<startedAtMs>/<heartbeatSeq>`: a record seen again is no sign of life. */
  readonly #lastBeat = new Map<string, string>();
  #freshestMs = 0;
  #flowingSinceMs = 0;

  constructor(readonly timeoutMs: number) {}

  /** A heartbeat record, seen at `nowMs`; false when it is one seen before (a reopened watch replays the latest). */
  beat(n: NodeRecord, nowMs: number): boolean {
    const key = `${n.startedAtMs}/${n.heartbeatSeq}`;
    if (this.#lastBeat.get(n.id) === key) return false;
    this.#lastBeat.set(n.id, key);
    if (!this.flows(nowMs)) this.#flowingSinceMs = nowMs;
    this.#freshestMs = nowMs;
    this.lastSeen.set(n.id, nowMs);
    return true;
  }

  /** Whether some node's heartbeat arrived lately (every node beats several times per timeout). */
  flows(nowMs: number): boolean {
    return nowMs - this.#freshestMs <= this.timeoutMs / 2;
  }

  /** Nodes silent for the timeout while others' heartbeats flowed. */
  silent(nowMs: number): string[] {
    if (!this.flows(nowMs)) return [];
    return [...this.lastSeen].filter(([, at]) => nowMs - Math.max(at, this.#flowingSinceMs) > this.timeoutMs).map(([id]) => id);
  }

  /** A node given the whole timeout from now (known to the table, not yet heard). */
  expect(id: string, nowMs: number): void {
    if (!this.lastSeen.has(id)) this.lastSeen.set(id, nowMs);
  }

  forget(id: string): void {
    this.lastSeen.delete(id);
    this.#lastBeat.delete(id);
  }

  /** A copy, for a scheduler taking over what this process has seen; heartbeats count as flowing from now at the earliest if none did. */
  copy(nowMs: number): Liveness {
    const c = new Liveness(this.timeoutMs);
    for (const [id, at] of this.lastSeen) c.lastSeen.set(id, at);
    for (const [id, b] of this.#lastBeat) c.#lastBeat.set(id, b);
    c.#freshestMs = this.flows(nowMs) ? this.#freshestMs : nowMs;
    c.#flowingSinceMs = this.flows(nowMs) ? this.#flowingSinceMs : nowMs;
    return c;
  }
}
