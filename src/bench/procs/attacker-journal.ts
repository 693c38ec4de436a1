import { KvJournal } from '../../actors/kv-journal.js';
import { REALM_JOURNAL } from '../../control/protocol/index.js';
import { connectBus } from '../../nats/real.js';
import type { Bus } from '../../nats/types.js';

type Outcome = { ok: true; detail?: string } | { ok: false; code: string };
const ATTEMPT_MS = 2_000;
const utf8 = new TextEncoder();
const FIRST_EVENT = 'attacker.000000000001';

/**
 * One attempt on a realm's journal as a realm's NATS user (`url`), with the inboxes of its own realm
 * `own` (the best an attacker can do: JetStream's answers reach it). `target`: whose journal. Each
 * attempt on another realm's journal, and every stream or consumer made, must be refused by nats-server.
 */
export async function journalAttempt(what: string, url: string, own: string, target: string): Promise<Outcome> {
  let bus: Bus | undefined;
  try {
    bus = await connectBus({ servers: [url], name: 'attacker', inboxPrefix: REALM_JOURNAL.inboxPrefix(own), connectTimeoutMs: ATTEMPT_MS, jsTimeoutMs: ATTEMPT_MS });
    const kv = await bus.kv(REALM_JOURNAL.bucket(target), { bind: true });
    const api = async (subject: string, body: unknown): Promise<Outcome> => ({ ok: true, detail: new TextDecoder().decode((await bus!.request(subject, utf8.encode(JSON.stringify(body)), { timeoutMs: ATTEMPT_MS })).data) });
    const stream = REALM_JOURNAL.stream(target);
    switch (what) {
      case 'append':
        return { ok: true, detail: String(await new KvJournal(kv, kv).append('attacker', ['forged'], 0)) };
      case 'read':
        return { ok: true, detail: JSON.stringify(await kv.get(FIRST_EVENT)) };
      case 'delete':
        await kv.delete(FIRST_EVENT);
        return { ok: true };
      case 'purge':
        return await api(`$JS.API.STREAM.PURGE.${stream}`, {});
      case 'remove':
        return await api(`$JS.API.STREAM.DELETE.${stream}`, {});
      case 'info':
        return await api(`$JS.API.STREAM.INFO.${stream}`, {});
      case 'stream-create':
        return await api('$JS.API.STREAM.CREATE.attacker', { name: 'attacker', subjects: ['attacker.>'], storage: 'file' });
      case 'consumer-create':
        return await api(`$JS.API.CONSUMER.CREATE.${stream}`, { stream_name: stream, config: { ack_policy: 'none', deliver_policy: 'all' } });
      case 'account':
        return await api('$JS.API.INFO', {});
      default:
        throw new Error(`no journal attempt ${what}`);
    }
  } catch (e) {
    return { ok: false, code: (e as { type?: string }).type ?? (e as Error).name };
  } finally {
    await bus?.close().catch(() => {});
  }
}
