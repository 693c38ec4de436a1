import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Mutual authentication of the node-to-node channel: each side sends a fresh nonce, and the other answers
 * with HMAC-SHA256(secret, "sigma-channel|" + nonce + "|" + its node id). A peer is up only once its proof
 * for our nonce checks out; before that, anything else it sends cuts the connection. The secret is the
 * cluster's (made by its first start); it never crosses the wire.
 */
const NONCE_BYTES = 16;

/** The env variable a node process takes the channel secret from (not its argv: `ps` shows that to everyone). */
export const CHANNEL_SECRET_ENV = 'SIGMA_CHANNEL_SECRET';

export function nonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

export function proof(secret: string, challenge: string, nodeId: string): string {
  return createHmac('sha256', secret).update(`sigma-channel|${challenge}|${nodeId}`).digest('base64url');
}

/** Whether `answer` is the proof of `nodeId` for `challenge` (compared in constant time). */
export function proves(secret: string, challenge: string, nodeId: string, answer: string): boolean {
  const want = Buffer.from(proof(secret, challenge, nodeId));
  const got = Buffer.from(answer);
  return want.length === got.length && timingSafeEqual(want, got);
}
