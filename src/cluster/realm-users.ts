import { writeFileSync } from 'node:fs';
import { BUCKET } from '../control/protocol/index.js';
import type { NatsUser } from '../nats/server.js';
import type { Bus } from '../nats/types.js';
import { authorizationSnippet, natsUsers, type NatsCredentials } from './nats-users.js';

/**
 * Where the users go: embedded servers reload them (one server, or every server of a cluster:
 * src/nats/cluster.ts); an external cluster's operator gets a snippet.
 */
export type UsersSink = { server: { setUsers(users: NatsUser[]): Promise<void> } } | { snippetFile: string };

/**
 * Keeps NATS's users in step with the realms: every realm in the store (and every realm the config
 * names, so that the first hosts never wait for a reload) has its user; a removed realm's user goes, and
 * the server closes its connections. Changes that come while a reload runs are folded into the next one.
 */
export async function followRealmUsers(bus: Bus, creds: NatsCredentials, configured: string[], sink: UsersSink, log: (line: string) => void): Promise<{ stop(): void }> {
  const realms = new Set<string>();
  let running: Promise<void> | undefined;
  let again = false;
  const apply = (): void => {
    if (running !== undefined) {
      again = true;
      return;
    }
    const users = natsUsers(creds, [...configured, ...realms]);
    running = ('server' in sink ? sink.server.setUsers(users) : Promise.resolve(writeFileSync(sink.snippetFile, authorizationSnippet(users), { mode: 0o600 })))
      .catch((e: unknown) => log(`NATS users not updated: ${(e as Error).message}`))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          apply();
        }
      });
  };
  const watch = await (await bus.kv(BUCKET.realms)).watch({ include: 'latest' });
  void (async () => {
    let first = true;
    for await (const c of watch) {
      const changed = c.operation === 'PUT' ? !realms.has(c.key) && realms.add(c.key).size > 0 : realms.delete(c.key);
      if (c.caughtUp && (changed || first)) apply();
      first &&= !c.caughtUp;
    }
  })();
  apply(); // an empty bucket has no entry to catch up with
  return { stop: () => watch.stop() };
}
