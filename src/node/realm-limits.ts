import { decodeRealmRecord, type RealmQuota } from '../control/protocol/index.js';
import type { Kv } from '../nats/types.js';

const BYTES_PER_MB = 2 ** 20;
/** A pool smaller than this has no room for its size classes. */
const POOL_MB_MIN = 1;

/** What the node applies of a realm's quota when it makes the realm's pool or starts one of its hosts. */
export interface RealmLimits {
  /** Its pool's size, where its quota caps it (quota.poolMb). */
  poolBytesFor(realm: string): number | undefined;
  /** Each host's scratch directory, where its quota sets it (quota.diskMb). */
  diskMbFor(realm: string): number | undefined;
  /** Reads a realm's record the watch has not brought yet (a realm made a moment ago). */
  known(realm: string): Promise<void>;
  stop(): void;
}

/** Follows the realms bucket: what each realm's quota says, as the node reads it when it needs it. */
export async function followRealmLimits(realmsKv: Kv, onError: (e: unknown) => void): Promise<RealmLimits> {
  const quotas = new Map<string, RealmQuota>();
  const watch = await realmsKv.watch({ include: 'latest' });
  void (async () => {
    try {
      for await (const c of watch) {
        const q = c.value === null ? undefined : decodeRealmRecord(c.value)?.quota;
        if (q === undefined) quotas.delete(c.key);
        else quotas.set(c.key, q);
      }
    } catch (e) {
      onError(e);
    }
  })();
  return {
    poolBytesFor: (realm) => {
      const mb = quotas.get(realm)?.poolMb;
      return mb === undefined ? undefined : Math.max(POOL_MB_MIN, mb) * BYTES_PER_MB;
    },
    diskMbFor: (realm) => quotas.get(realm)?.diskMb,
    known: async (realm) => {
      if (quotas.has(realm)) return;
      const e = await realmsKv.get(realm);
      const q = e?.value == null ? undefined : decodeRealmRecord(e.value)?.quota;
      if (q !== undefined) quotas.set(realm, q);
    },
    stop: () => watch.stop(),
  };
}
