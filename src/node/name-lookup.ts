import { decodeNameRecord, type NameRecord } from '../control/protocol/index.js';
import type { Kv } from '../nats/types.js';

/** Answers a host's name lookups for its data path. */
export type HostNameLookup = (hostRealm: string, key: string) => Promise<NameRecord | undefined>;

/**
 * Hosts read no bucket (their NATS user reaches their realm's actors and nothing else): their node
 * answers for them, and answers only what the host's realm may see, its own services and those another
 * realm exports to it. Anything else, a malformed key included, is "no such service".
 */
export function hostNameLookup(namesKv: Kv): HostNameLookup {
  return async (hostRealm, key) => {
    const e = await namesKv.get(key).catch(() => null);
    const rec = e?.value == null ? undefined : decodeNameRecord(e.value);
    if (rec === undefined) return undefined;
    return rec.realm === hostRealm || rec.exports?.includes(hostRealm) === true ? rec : undefined;
  };
}
