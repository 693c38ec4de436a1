/**
 * Attempts (each bounded by the KV call's timeout) to remove a name: an exited service's by its node
 * (a read and a CAS delete each), a removed realm's by the scheduler. A lost delete must not leave a
 * name behind (found by the simulator: realm-teardown-under-load seed 3030).
 */
export const NAME_DELETE_ATTEMPTS_MAX = 5;

/** Realm names: DNS-label-like, so they fit NATS subjects, KV keys and pid prefixes. */
export const REALM_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
