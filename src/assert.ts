/**
 * Invariants the code relies on. A failed assertion is a bug in sigma-ts, never a user's mistake (bad
 * input gets a typed error instead): inside an actor it crashes the actor, so its supervisor decides.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionError(message);
}

/** A switch over a closed union reached a case it should not have. */
export function assertNever(v: never, what: string): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(v)}`);
}
