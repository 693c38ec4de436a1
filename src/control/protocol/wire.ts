/**
 * How control messages are written and read: JSON bytes, and a decoder per message that checks its
 * shape and returns undefined for anything else (it never throws). Decoders hand back the parsed object
 * itself once it is checked, so what is written again is byte for byte what was read.
 */
export type Decoder<T> = (v: unknown) => T | undefined;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encode(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

/** Parses JSON bytes; undefined when they are not JSON. Shape checks follow in the typed decoders. */
export function decodeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

/** A decoder of parsed values as one of bytes. */
export const fromBytes =
  <T>(d: Decoder<T>) =>
  (bytes: Uint8Array): T | undefined =>
    d(decodeJson(bytes));

export const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const isStr = (v: unknown): v is string => typeof v === 'string';
export const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

/** An error as it crosses the wire. `type` is a ControlErrorType on control subjects, a data-path error's own type on data-path calls. */
export interface WireError {
  type: string;
  message: string;
  field?: string;
}

export const decodeWireError: Decoder<WireError> = (v) =>
  isObj(v) && isStr(v['type']) && isStr(v['message']) && (v['field'] === undefined || isStr(v['field'])) ? (v as unknown as WireError) : undefined;

/** The reply of a request that only succeeds or fails. */
export type Ack = { ok: true } | { ok: false; error: WireError };

/** A reply `{ ok: true, ...value }` checked by `ok`, or `{ ok: false, error }`. */
export function decodeResult<T extends { ok: true }>(ok: (v: Record<string, unknown>) => boolean): Decoder<T | { ok: false; error: WireError }> {
  return (v) => {
    if (!isObj(v)) return undefined;
    if (v['ok'] === true) return ok(v) ? (v as unknown as T) : undefined;
    if (v['ok'] === false && decodeWireError(v['error']) !== undefined) return v as unknown as { ok: false; error: WireError };
    return undefined;
  };
}

export const decodeAck: Decoder<Ack> = decodeResult<{ ok: true }>(() => true);
