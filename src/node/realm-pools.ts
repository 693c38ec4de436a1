import { decodeRealmRecord } from '../control/protocol/index.js';
import type { Kv } from '../nats/types.js';

const BYTES_PER_MB = 2 ** 20;
/** A pool smaller than this has no room for its size classes. */
const POOL_MB_MIN = 1;

/**
 * The pool size each realm's quota allows (poolMb), followed from the realms bucket, for the node's
 * data path to read when it makes a realm's pool. A realm without the field: the node's own size.
 */
export async function followRealmPools(realmsKv: Kv, onError: (e: unknown) => void): Promise<{ poolBytesFor(realm: string): number | undefined; stop(): void }> {
  const bytes = new Map<string, number>();
  const watch = await realmsKv.watch({ include: 'latest' });
  void (async () => {
    try {
      for await (const c of watch) {
        const mb = c.value === null ? undefined : decodeRealmRecord(c.value)?.quota?.poolMb;
        if (mb === undefined) bytes.delete(c.key);
        else bytes.set(c.key, Math.max(POOL_MB_MIN, mb) * BYTES_PER_MB);
      }
    } catch (e) {
      onError(e);
    }
  })();
  return { poolBytesFor: (realm) => bytes.get(realm), stop: () => watch.stop() };
}
