import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTHORIZATION_SNIPPET, startCluster } from '../src/cluster/launcher.js';
import { CREDENTIALS_FILE, realmPassword, realmUser, withUser } from '../src/cluster/nats-users.js';
import { defineCluster } from '../src/config/cluster.js';
import { REALM_JOURNAL } from '../src/control/protocol/index.js';
import { connectBus } from '../src/nats/real.js';
import { startNatsServer } from '../src/nats/server.js';
import { testCluster, waitFor } from './helpers/cluster.js';

// Each realm's proc hosts speak NATS as a user of their realm, made and dropped as realms come and go
// (the launcher reloads the embedded server's users; an external cluster's operator gets a snippet).

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: unknown };

/** Whether nats-server lets this user in now. */
const admits = async (url: string): Promise<boolean> => {
  try {
    await (await connectBus({ servers: [url], name: 'probe', connectTimeoutMs: 2_000 })).close();
    return true;
  } catch {
    return false;
  }
};

test('realm users - a realm made at run time gets a NATS user its hosts work with; its removal takes the user away', async (t) => {
  const tc = await testCluster({ nodes: 1 });
  try {
    const creds = JSON.parse(readFileSync(join(tc.cluster.dataDir, CREDENTIALS_FILE), 'utf8')) as { realms: string };
    const host = `nats://${new URL(tc.cluster.natsUrl).host}`;
    const url = (realm: string, password = realmPassword(creds.realms, realm)): string => withUser(host, realmUser(realm), password);
    t.false(await admits(url('gamma')), 'no user before the realm exists');
    t.false(await admits(url('default', 'guessed')), 'a wrong password is refused');
    await tc.client.createRealm('gamma');
    t.true(await waitFor(() => admits(url('gamma')), (ok) => ok));
    const journal = await tc.bus.kv(REALM_JOURNAL.bucket('gamma'), { bind: true });
    t.is(await journal.get('probe'), null, 'the realm has its journal (an empty bucket) from its creation on');
    const pid = await tc.client.spawn({ program: 'counter', name: 'ctr', realm: 'gamma' });
    await tc.client.waitStart(pid, { timeoutMs: 20_000 });
    const path = (await waitFor(() => tc.client.names('gamma'), (ns) => ns.some((n) => n.name === 'ctr')))[0]!.actorPath;
    const ctr = tc.system('gamma').refFor<CounterMsg>(path);
    ctr.tell({ type: 'add', n: 5 });
    t.is(await ctr.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000), 5, "the new realm's host answers through its realm's user");
    await tc.client.removeRealm('gamma');
    t.false(await waitFor(() => admits(url('gamma')), (ok) => !ok), 'the user went with the realm');
    await t.throwsAsync(journal.get('probe'), { message: /stream not found/ }, 'and so did its journal');
    t.true(await admits(url('default')), 'other realms keep theirs');
  } finally {
    await tc.stop();
  }
});

test('realm users - with an external NATS cluster the launcher writes its users as a config snippet for the operator, kept up to date', async (t) => {
  const external = await startNatsServer();
  const dataDir = mkdtempSync(join(tmpdir(), 'sigma-external-'));
  const cluster = await startCluster(defineCluster({ nodes: 1, nats: { servers: [external.url] }, dataDir, realms: ['default'] }), { log: () => {} });
  try {
    const snippet = join(dataDir, AUTHORIZATION_SNIPPET);
    const users = (): string[] => (existsSync(snippet) ? [...readFileSync(snippet, 'utf8').matchAll(/"user": "([^"]+)"/g)].map((m) => m[1]!) : []);
    t.deepEqual(await waitFor(async () => users(), (u) => u.includes('realm.default')), ['sigma', 'realm.default']);
    t.regex(readFileSync(snippet, 'utf8'), /"sigma\.actor\.realm\.default\.>"/);
  } finally {
    await cluster.stop();
    await external.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
