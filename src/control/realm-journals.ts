import type { Bus } from '../nats/types.js';
import { REALM_JOURNAL } from './protocol/index.js';
import type { RealmJournals } from './scheduler/state.js';

/**
 * Realm journals as buckets of the control plane's NATS: replicated as every bucket this bus creates,
 * bounded by REALM_JOURNAL.bytesMax. Undefined where buckets cannot be removed (the simulator's bus),
 * so that the simulator runs without journals.
 */
export function realmJournals(bus: Bus): RealmJournals | undefined {
  const removeKv = bus.removeKv?.bind(bus);
  if (removeKv === undefined) return undefined;
  return {
    create: async (realm) => void (await bus.kv(REALM_JOURNAL.bucket(realm), { bytesMax: REALM_JOURNAL.bytesMax })),
    remove: (realm) => removeKv(REALM_JOURNAL.bucket(realm)),
  };
}
