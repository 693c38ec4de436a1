import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ActorSystem } from '../../actors/index.js';
import type { SigmaClient } from '../../client/client.js';
import { CREDENTIALS_FILE, realmPassword, realmUser, withUser } from '../../cluster/nats-users.js';

/** What an attack needs to know about the cluster it attacks. */
export interface Target {
  client: SigmaClient;
  dataDir: string;
  natsUrl: string;
  /** An actor system of realm alpha, to read the victim service's state. */
  alpha: ActorSystem;
}

/** One attempt by a proc of realm beta (or gamma): blocked when it failed, or its effect did not happen. */
interface Attack {
  name: string;
  /** Whether success would reach another realm (its data, its procs, its services). */
  crossRealm: boolean;
  tried(t: Target, env: Env): Promise<boolean>;
}

interface Env {
  alphaHost: number;
  bystanderPort: number;
  tallyPath: string;
  run(realm: string, ...args: string[]): Promise<{ ok: boolean } & Record<string, unknown>>;
  realmUrl(realm: string): string;
}

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: unknown };
const pidOf = (pattern: string): string => execFileSync('pgrep', ['-o', '-f', pattern], { encoding: 'utf8' }).trim();
const worked = (realm: string, ...args: string[]) => async (_t: Target, e: Env) => (await e.run(realm, ...args)).ok;
const beta = (...args: string[]) => worked('beta', ...args);

/** The attacks of test/isolation.test.ts, as a list the benchmark counts. Each returns whether it WORKED. */
const ATTACKS: Attack[] = [
  { name: "read another realm's file", crossRealm: true, tried: (t, e) => beta('read', join(t.dataDir, 'realms', 'alpha', 'secret'))(t, e) },
  { name: "list another realm's directory", crossRealm: true, tried: (t, e) => beta('list', join(t.dataDir, 'realms', 'alpha'))(t, e) },
  { name: "write into another realm's directory", crossRealm: true, tried: (t, e) => beta('write', join(t.dataDir, 'realms', 'alpha', 'secret'))(t, e) },
  { name: "read another realm's pool through /proc", crossRealm: true, tried: (t, e) => beta('read', `/proc/${e.alphaHost}/fd/4`)(t, e) },
  { name: "read another realm's host environment", crossRealm: true, tried: (t, e) => beta('read', `/proc/${e.alphaHost}/environ`)(t, e) },
  { name: "signal another realm's host", crossRealm: true, tried: (t, e) => beta('signal', String(e.alphaHost))(t, e) },
  { name: "listen to another realm's actors", crossRealm: true, tried: (t, e) => beta('nats', 'listen', e.realmUrl('beta'), 'alpha')(t, e) },
  {
    name: "send a frame to another realm's service",
    crossRealm: true,
    async tried(t, e) {
      await e.run('beta', 'nats', 'frame', e.realmUrl('beta'), e.tallyPath, '{"type":"add","n":1000}');
      const tally = t.alpha.refFor<CounterMsg>(e.tallyPath);
      return (await tally.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000)) >= 1000;
    },
  },
  { name: 'read /etc/shadow', crossRealm: false, tried: beta('read', '/etc/shadow') },
  { name: "read the cluster's NATS credentials", crossRealm: false, tried: (t, e) => beta('read', join(t.dataDir, CREDENTIALS_FILE))(t, e) },
  { name: "list the cluster's JetStream store", crossRealm: false, tried: (t, e) => beta('list', join(t.dataDir, 'nats'))(t, e) },
  { name: 'list the proc logs', crossRealm: false, tried: (t, e) => beta('list', join(t.dataDir, 'logs'))(t, e) },
  { name: 'write outside its directory', crossRealm: false, tried: beta('write', '/tmp/sigma-pwned') },
  { name: 'signal the node process', crossRealm: false, tried: (t, e) => beta('signal', pidOf('node/main.js'))(t, e) },
  { name: 'signal nats-server', crossRealm: false, tried: (t, e) => beta('signal', pidOf('nats-server'))(t, e) },
  { name: 'open a UDP socket', crossRealm: false, tried: beta('udp') },
  { name: 'listen on a TCP port', crossRealm: false, tried: beta('listen') },
  { name: 'connect to a port other than NATS', crossRealm: false, tried: (t, e) => beta('connect', '127.0.0.1', String(e.bystanderPort))(t, e) },
  {
    name: 'connect to the node-to-node channel',
    crossRealm: true,
    async tried(t, e) {
      const dp = (await t.client.nodes())[0]?.datapath;
      return dp !== undefined && (await e.run('beta', 'connect', dp.host, String(dp.port))).ok;
    },
  },
  { name: 'exec a shell', crossRealm: false, tried: beta('exec', '/bin/sh', '-c\u0000id') },
  { name: 'use NATS without a user', crossRealm: false, tried: (t, e) => beta('nats', 'anonymous', e.realmUrl('beta').replace(/\/\/[^@]*@/, '//'))(t, e) },
  ...['spawn', 'node-order', 'realms', 'proc-table', 'names', 'eavesdrop'].map((what) => ({ name: `NATS as its realm: ${what}`, crossRealm: what !== 'spawn', tried: (t: Target, e: Env) => beta('nats', what, e.realmUrl('beta'))(t, e) })),
  { name: "find its realm's NATS password in its environment", crossRealm: false, tried: (t, e) => beta('secrets', decodeURIComponent(new URL(e.realmUrl('beta')).password))(t, e) },
  { name: 'fill the disk', crossRealm: false, tried: async (_t, e) => (await e.run('gamma', 'fill', '64')).ok },
  {
    name: 'exhaust the memory',
    crossRealm: false,
    async tried(t) {
      const pid = await t.client.spawn({ program: 'attacker', args: ['hog', '4096'], realm: 'beta', lc: true, mcpu: 100, memMb: 64, dedicated: true });
      const st = await t.client.waitExit(pid, { timeoutMs: 60_000 });
      return !(st.kind === 'crashed' && /over its memory limit/.test(st.message));
    },
  },
];

export interface AttackResult {
  attacks_tried: number;
  attacks_blocked: number;
  cross_realm_leaks: number;
  /** Names of the attacks that worked. */
  worked: string[];
}

/** Runs every attack against a cluster with realms alpha, beta and gamma (gamma: a small diskMb quota). */
export async function runAttacks(t: Target, onAttack: () => void): Promise<AttackResult> {
  const run = async (realm: string, ...args: string[]): Promise<{ ok: boolean } & Record<string, unknown>> => {
    const pid = await t.client.spawn({ program: 'attacker', args, realm });
    const st = await t.client.waitExit(pid, { timeoutMs: 30_000 });
    if (st.kind !== 'ok') throw new Error(`attacker ${args.join(' ')} ended ${st.kind}: ${st.message}`);
    return st.data as { ok: boolean } & Record<string, unknown>;
  };
  const creds = JSON.parse(readFileSync(join(t.dataDir, CREDENTIALS_FILE), 'utf8')) as { realms: string };
  const realmUrl = (realm: string): string => withUser(`nats://${new URL(t.natsUrl).host}`, realmUser(realm), realmPassword(creds.realms, realm));
  const bystander = createServer((s) => s.destroy());
  await new Promise<void>((r) => bystander.listen(0, '127.0.0.1', () => r()));
  try {
    if (!(await run('alpha', 'write-home', 'secret', 'alpha only')).ok) throw new Error('realm alpha cannot write its own directory: the attacks would prove nothing');
    const alphaHost = (await run('alpha', 'whoami'))['pid'] as number;
    const tally = await t.client.spawn({ program: 'counter', name: 'tally', realm: 'alpha' });
    await t.client.waitStart(tally, { timeoutMs: 20_000 });
    const tallyPath = (await t.client.names('alpha')).find((n) => n.name === 'tally')!.actorPath;
    const env: Env = { alphaHost, bystanderPort: (bystander.address() as { port: number }).port, tallyPath, run, realmUrl };
    const worked: string[] = [];
    let leaks = 0;
    for (const a of ATTACKS) {
      if (await a.tried(t, env)) {
        worked.push(a.name);
        if (a.crossRealm) leaks++;
      }
      onAttack();
    }
    return { attacks_tried: ATTACKS.length, attacks_blocked: ATTACKS.length - worked.length, cross_realm_leaks: leaks, worked };
  } finally {
    bystander.close();
  }
}

export const ATTACK_COUNT = ATTACKS.length;
