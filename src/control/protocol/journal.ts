/**
 * Each realm's journal: a KV bucket of its own, made when the realm is created and deleted with it
 * (src/control/scheduler/realms.ts). It is the one piece of JetStream a realm's NATS user may reach
 * (src/cluster/nats-users.ts): where its procs keep durable state (ProcContext.journal, the journal of
 * a PersistentActor; src/actors/kv-journal.ts).
 */
export const REALM_JOURNAL = {
  bucket: (realm: string): string => `sigma_journal_${realm}`,
  /** Its bucket's stream, as JetStream's API names it. */
  stream: (realm: string): string => `KV_sigma_journal_${realm}`,
  /**
   * The reply inboxes of the realm's hosts: JetStream answers a request there, so the realm's user must
   * be allowed to listen, and under `_INBOX` it would hear every other client's replies.
   */
  inboxPrefix: (realm: string): string => `sigma.inbox.${realm}`,
  /** Bytes one realm's journal may hold: past it, appends are refused (a tenant cannot fill the disk). */
  bytesMax: 128 * 2 ** 20,
} as const;
