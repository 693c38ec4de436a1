import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACTOR, REALM_JOURNAL } from '../control/protocol/index.js';
import type { NatsUser } from '../nats/server.js';

/** Where an embedded server's credentials live: the cluster's data directory, root only. */
export const CREDENTIALS_FILE = 'nats-credentials.json';
const PASSWORD_BYTES = 24;
/** The control plane's user: node processes, the CLI, clients. */
export const ADMIN_USER = 'sigma';
/** Node processes get the key to their realms' passwords in this variable, never in a file or argument. */
export const REALM_KEY_ENV = 'SIGMA_REALM_KEY';

export interface NatsCredentials {
  admin: string;
  /** The key each realm's NATS password is derived from (realmPassword): realms come and go at run time. */
  realms: string;
  /** The node-to-node channel's secret (src/datapath/remote-auth.ts), given to node processes in SIGMA_CHANNEL_SECRET. */
  channel: string;
}

/** The cluster's secrets: made at the first start, kept in the data directory (0600) after. */
export function clusterCredentials(dataDir: string): NatsCredentials {
  const file = join(dataDir, CREDENTIALS_FILE);
  const known = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<NatsCredentials>) : {};
  const fresh = (): string => randomBytes(PASSWORD_BYTES).toString('base64url');
  const creds = { admin: known.admin ?? fresh(), realms: known.realms ?? fresh(), channel: known.channel ?? fresh() };
  if (known.admin === undefined || known.realms === undefined || known.channel === undefined) {
    writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return creds;
}

/** The NATS user of one realm's proc hosts. */
export const realmUser = (realm: string): string => `realm.${realm}`;

/** One realm's password: derived, so that a node process can give its hosts theirs without a file of passwords. */
export function realmPassword(realmKey: string, realm: string): string {
  return createHmac('sha256', realmKey).update(`sigma realm ${realm}`).digest('base64url');
}

/**
 * The users of a cluster's NATS: the control plane's, and one per realm. A realm's hosts may exchange
 * actor frames with that realm's actor systems only (`realm.<realm>.*`: its hosts, and clients that
 * talk to its services), and use the realm's own journal (realmJournalPermissions): no scheduler, node
 * or realm subject, no proc table, no other JetStream, no other realm's actors or journal. They find
 * services through their node (src/node/name-lookup.ts).
 */
export function natsUsers(c: NatsCredentials, realms: Iterable<string>): NatsUser[] {
  const users: NatsUser[] = [{ user: ADMIN_USER, password: c.admin }];
  for (const realm of [...new Set(realms)].sort()) {
    const actors = ACTOR.realmSubjects(realm);
    const journal = realmJournalPermissions(realm);
    users.push({ user: realmUser(realm), password: realmPassword(c.realms, realm), permissions: { publish: { allow: [actors, ...journal.publish] }, subscribe: { allow: [actors, ...journal.subscribe] } } });
  }
  return users;
}

/**
 * What a realm's user may do with JetStream: exactly what its journal's KV operations send, on its own
 * bucket. Writes (create, put, delete) are publishes to the bucket's subjects; a read is a message get
 * (a bucket bound from a realm host reads with STREAM.MSG.GET, never a direct get); the answers come to
 * the realm's inboxes. No consumer (KvJournal lists no keys), no stream create, info, purge or delete,
 * no account info: a realm cannot make JetStream resources or learn of other realms' ones.
 */
export function realmJournalPermissions(realm: string): { publish: string[]; subscribe: string[] } {
  return {
    publish: [`$KV.${REALM_JOURNAL.bucket(realm)}.>`, `$JS.API.STREAM.MSG.GET.${REALM_JOURNAL.stream(realm)}`],
    subscribe: [`${REALM_JOURNAL.inboxPrefix(realm)}.>`],
  };
}

/** The users as a nats-server config snippet, for the operator of an external NATS cluster. */
export function authorizationSnippet(users: NatsUser[]): string {
  return `# sigma-ts users: include this file in the nats-server config, and reload after each realm change\nauthorization ${JSON.stringify({ users }, null, 2)}\n`;
}

/** `url` (or each URL of a comma-separated list) with a user and password in it (nats.js takes them from the URL). */
export function withUser(url: string, user: string, password: string): string {
  return url
    .split(',')
    .map((one) => {
      const u = new URL(one.trim());
      u.username = encodeURIComponent(user);
      u.password = encodeURIComponent(password);
      return u.toString().replace(/\/$/, '');
    })
    .join(',');
}

/** The user a route between a cluster's servers authenticates as (src/nats/cluster.ts). */
export const ROUTE_USER = 'sigma-route';

/** The routes' password: derived from the admin password, so it needs no file of its own. */
export function routePassword(c: NatsCredentials): string {
  return createHmac('sha256', c.admin).update('sigma nats routes').digest('base64url');
}
