/**
 * How a call is correlated across the data path, inside the descriptor's u64 request id (no new
 * descriptor fields, so the kernel program and the header stay as they are):
 *
 *   bit 63      response: this descriptor answers a call
 *   bits 32..62 reply-to endpoint (endpoint ids are 31-bit): where the answer goes — kept when a stage
 *               forwards the request, so the last stage of a chain answers the original caller
 *   bit 31      error: the answer is a UTF-8 reason, not a result (responses only)
 *   bits 0..30  call sequence number of the caller, never 0
 *
 * Request id 0 is a one-way message (ctx.send): no answer is expected.
 */
export const RESPONSE_BIT = 1n << 63n;
const ERROR_BIT = 1n << 31n;
const SEQ_MASK = (1n << 31n) - 1n;
const EP_MASK = (1n << 31n) - 1n;
export const CALL_SEQ_MAX = 0x7fff_ffff;

export function callId(replyTo: number, seq: number): bigint {
  if (!Number.isInteger(replyTo) || replyTo < 1 || replyTo > 0x7fff_ffff) throw new RangeError(`reply-to endpoint ${replyTo} is not a 31-bit endpoint id`);
  if (!Number.isInteger(seq) || seq < 1 || seq > CALL_SEQ_MAX) throw new RangeError(`call sequence ${seq} is outside [1, ${CALL_SEQ_MAX}]`);
  return (BigInt(replyTo) << 32n) | BigInt(seq);
}

export function responseId(request: bigint, error: boolean): bigint {
  return (request & ~ERROR_BIT) | RESPONSE_BIT | (error ? ERROR_BIT : 0n);
}

export interface ParsedId {
  oneWay: boolean;
  response: boolean;
  error: boolean;
  replyTo: number;
  seq: number;
}

export function parseId(id: bigint): ParsedId {
  return {
    oneWay: id === 0n,
    response: (id & RESPONSE_BIT) !== 0n,
    error: (id & ERROR_BIT) !== 0n,
    replyTo: Number((id >> 32n) & EP_MASK),
    seq: Number(id & SEQ_MASK),
  };
}
