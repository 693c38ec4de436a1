import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACTOR, BUCKET, HOST_INBOX_PREFIX } from '../control/protocol/index.js';
import type { NatsUser } from '../nats/server.js';

/** Where an embedded server's credentials live: the cluster's data directory, root only. */
export const CREDENTIALS_FILE = 'nats-credentials.json';
const PASSWORD_BYTES = 24;
/** The control plane's user (node processes, the CLI, clients) and the one proc hosts use. */
export const ADMIN_USER = 'sigma';
export const HOST_USER = 'sigma-host';

export interface NatsCredentials {
  admin: string;
  host: string;
  /** The node-to-node channel's secret (src/datapath/remote-auth.ts), given to node processes in SIGMA_CHANNEL_SECRET. */
  channel: string;
}

/** The cluster's secrets: made at the first start, kept in the data directory (0600) after. */
export function clusterCredentials(dataDir: string): NatsCredentials {
  const file = join(dataDir, CREDENTIALS_FILE);
  const known = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<NatsCredentials>) : {};
  const fresh = (): string => randomBytes(PASSWORD_BYTES).toString('base64url');
  const creds = { admin: known.admin ?? fresh(), host: known.host ?? fresh(), channel: known.channel ?? fresh() };
  if (known.admin === undefined || known.host === undefined || known.channel === undefined) {
    writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return creds;
}

/**
 * The users of an embedded server. Proc hosts may exchange actor frames and read the names bucket (to
 * find services), nothing else: no scheduler, node or realm subject, no proc table, no KV or JetStream
 * writes, no bucket management. (Per-realm users, which would also keep one realm's hosts from
 * another's actor subjects, are not there yet: docs/isolation.md.)
 */
export function natsUsers(c: NatsCredentials): NatsUser[] {
  const names = `KV_${BUCKET.names}`;
  const actors = ACTOR.subject('>');
  return [
    { user: ADMIN_USER, password: c.admin },
    {
      user: HOST_USER,
      password: c.host,
      permissions: {
        publish: { allow: [actors, '$JS.API.INFO', `$JS.API.STREAM.INFO.${names}`, `$JS.API.STREAM.MSG.GET.${names}`, `$JS.API.DIRECT.GET.${names}.>`] },
        subscribe: { allow: [actors, `${HOST_INBOX_PREFIX}.>`] },
      },
    },
  ];
}

/** `url` with a user and password in it (nats.js takes them from the URL). */
export function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString().replace(/\/$/, '');
}
