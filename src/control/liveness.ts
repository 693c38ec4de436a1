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
  /**
   * Each node's newest heartbeat: one seen before, or older (the nodes bucket gets every few, and a
   * reopened watch replays its latest), is no sign of life.
   */
  readonly #lastBeat = new Map<string, { startedAtMs: number; seq: number }>();
  #freshestMs = 0;
  #flowingSinceMs = 0;

  constructor(readonly timeoutMs: number) {}

  /** A heartbeat record, seen at `nowMs`; false when it is no newer than one seen before. */
  beat(n: NodeRecord, nowMs: number): boolean {
    const last = this.#lastBeat.get(n.id);
    // Another incarnation counts whatever its start time says (a restarted machine's clock may be behind).
    if (last !== undefined && n.startedAtMs === last.startedAtMs && n.heartbeatSeq <= last.seq) return false;
    this.#lastBeat.set(n.id, { startedAtMs: n.startedAtMs, seq: n.heartbeatSeq });
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
