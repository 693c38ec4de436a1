import type { Bus } from '../../nats/types.js';
import { decodeJson, encode, type Decoder } from './wire.js';

/** A reply that does not decode: the other side runs another version, or is not what it claims. */
export class MalformedReplyError extends Error {
  override name = 'MalformedReplyError';
  readonly type = 'malformed-reply';
  constructor(subject: string) {
    super(`malformed reply on ${subject}`);
  }
}

/** One request on `subject`, its reply decoded; transport errors (timeout, no responders) pass through. */
export async function call<Rep>(bus: Bus, subject: string, reply: Decoder<Rep>, body: unknown, timeoutMs: number): Promise<Rep> {
  const m = await bus.request(subject, encode(body), { timeoutMs });
  const r = reply(decodeJson(m.data));
  if (r === undefined) throw new MalformedReplyError(subject);
  return r;
}
