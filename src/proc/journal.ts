import type { Journal } from '../actors/persistent.js';

/** ProcContext.journal where there is none: a host started without NATS (tests of the host alone). */
export class JournalUnavailableError extends Error {
  readonly type = 'journal-unavailable';
  constructor(readonly reason: string) {
    super(`no journal for this proc: ${reason}; durable state needs a cluster (its realm's journal)`);
    this.name = 'JournalUnavailableError';
  }
}

/** A journal whose every call rejects with JournalUnavailableError, saying why. */
export function noJournal(reason: string): Journal {
  const refuse = (): Promise<never> => Promise.reject(new JournalUnavailableError(reason));
  return {
    append: refuse,
    // eslint-disable-next-line require-yield
    read: async function* () {
      throw new JournalUnavailableError(reason);
    },
    saveSnapshot: refuse,
    loadSnapshot: refuse,
  };
}
