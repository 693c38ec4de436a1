#!/usr/bin/env node
/** The `sigma` CLI. Tables for people, --json for scripts, exit codes in format.ts. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync, statSync, watch } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataPathCallError, DEFAULT_EVICT_GRACE_MS, DEFAULT_REQUEST_TIMEOUT_MS, PS_PAGE_DEFAULT, SigmaClient, untilScheduler, WAIT_TIMEOUT_MS_DEFAULT, WaitTimeoutError } from '../client/client.js';
import { ControlError } from '../control/errors.js';
import { QUOTA_FIELDS, QUOTA_VALUE_MAX, type NodeRecord, type RealmQuota } from '../control/protocol/index.js';
import type { ClusterConfig } from '../config/cluster.js';
import { connectBus } from '../nats/real.js';
import { startCluster } from '../cluster/launcher.js';
import { DeployError, isUsageError } from '../programs/errors.js';
import { ADMIN_USER, CREDENTIALS_FILE, withUser } from '../cluster/nats-users.js';
import { EXIT, table } from './format.js';
import { contextFile, findCluster, NATS_ENV, NoClusterError, writeContext, type ClusterAddress, ContextError } from '../cluster/context.js';
import type { Bus } from '../nats/types.js';
import { programCommands } from './programs.js';
import { routeCommands } from './route.js';
import { topCommand } from './top.js';
import { programStore } from '../programs/client.js';
import { armFromEnv } from '../chaos/sigmafail.js';
import { realTimers } from '../ports/real.js';

/** A commander parser for a number option: a whole number in [min, max], or a usage error (exit 2). */
const wholeNumber = (min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number in [${min}, ${max}], got "${v}"`);
  return n;
};
/** Bounds of the numeric options: what a spec or a wait could ever use (the scheduler checks the rest). */
const MCPU_OPTION_MAX = 1_000_000;
const MEM_MB_OPTION_MAX = 16_777_216;
const MS_OPTION_MAX = 86_400_000;
/** Records one `ps --all` page may ask for. */
const PS_PAGE_MAX = 100_000;

// exitOverride: commander's own errors (unknown command or option, a bad value) throw here instead of
// exiting 1, which means "the proc failed" to scripts; they exit 2 (usage) below.
const program = new Command('sigma').exitOverride().description('sigma-ts: a multi-tenant cloud OS of supervised actors').option('--nats <url>', 'NATS URL of the cluster (default: $SIGMA_NATS, the context file of npm run cluster (~/.sigma/context.json or $SIGMA_CONTEXT), or cluster.config.ts here)').option('--config <file>', 'cluster config', 'cluster.config.ts').option('--json', 'machine-readable output');

async function loadConfig(file: string): Promise<ClusterConfig> {
  // cluster.config.ts is compiled to dist/cluster.config.js by the bootstrap.
  const abs = resolve(file);
  const js = abs.endsWith('.ts') ? join(resolve('dist'), `${abs.slice(process.cwd().length + 1, -3)}.js`) : abs;
  if (!existsSync(js)) throw new Error(`config ${file} not found (looked for ${js}); run from the project root or pass --config`);
  return ((await import(pathToFileURL(js).href)) as { default: ClusterConfig }).default;
}

/** The cluster of a project's cluster.config.ts, when the CLI runs in such a project (the last resort). */
async function fromConfig(file: string): Promise<ClusterAddress | undefined> {
  const abs = resolve(file);
  if (!existsSync(abs)) return undefined;
  const c = await loadConfig(file);
  const source = `${file} in ${process.cwd()}`;
  const nats = c.nats;
  if (!nats.embedded) return { url: nats.servers.join(','), source, dataDir: resolve(c.dataDir) };
  // The embedded server's control-plane user, from the data directory `npm run cluster` made (root only).
  const creds = join(resolve(c.dataDir), CREDENTIALS_FILE);
  const url = Array.from({ length: nats.embeddedServers }, (_, i) => `nats://127.0.0.1:${nats.port + i}`).join(',');
  return { url: existsSync(creds) ? withUser(url, ADMIN_USER, (JSON.parse(readFileSync(creds, 'utf8')) as { admin: string }).admin) : url, source, dataDir: resolve(c.dataDir) };
}

/** --nats, SIGMA_NATS, the context file, then cluster.config.ts here: the first that names a cluster. */
async function clusterAddress(): Promise<ClusterAddress> {
  const o = program.opts<{ nats?: string; config: string }>();
  const found = await findCluster({ ...(o.nats === undefined ? {} : { flag: o.nats }), fallback: () => fromConfig(o.config) });
  if (found === undefined) throw new NoClusterError(undefined, `no --nats, no ${NATS_ENV}, no context file (${contextFile()}) and no ${o.config} here; start one with \`npm run cluster\` or say where it is`);
  return found;
}

async function withBus<T>(fn: (bus: Bus) => Promise<T>): Promise<T> {
  const address = await clusterAddress();
  const bus = await connectBus({ servers: [address.url], name: 'sigma-cli' }).catch((e: unknown) => {
    throw new NoClusterError(address, (e as Error).message.replace(/^cannot connect to NATS at [^:]+:\/\/[^ ]+: /, ''));
  });
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}

const withClient = <T>(fn: (c: SigmaClient) => Promise<T>): Promise<T> => withBus(async (bus) => fn(await SigmaClient.connect(bus)));

const json = (): boolean => program.opts<{ json?: boolean }>().json === true;
const out = (human: string, data: unknown): void => console.log(json() ? JSON.stringify(data) : human);

program
  .command('cluster')
  .description('start a local cluster as cluster.config.ts describes; Ctrl-C stops it')
  .action(async () => {
    const cfgFile = program.opts<{ config: string }>().config;
    const config = await loadConfig(cfgFile);
    // SIGMA_FAIL faults for `launcher` (node processes read the same variable for their own ids).
    armFromEnv('launcher', realTimers, (l) => console.log(`  ${l}`));
    const cluster = await startCluster(config, { log: (l) => console.log(`  ${l}`), pretty: process.stdout.isTTY === true });
    const bus = await connectBus({ servers: [cluster.natsUrl], name: 'sigma-cluster', replicas: config.nats.replicas });
    const client = await SigmaClient.connect(bus);
    for (const r of config.realms) {
      const quota = Object.hasOwn(config.quotas, r) ? config.quotas[r] : undefined; // a realm may be named `constructor`
      await untilScheduler(() => client.createRealm(r, quota === undefined ? {} : { quota }), { attempts: 40, delayMs: 250 }).catch((e: unknown) => {
        if ((e as ControlError).type !== 'realm-exists') throw e;
      });
    }
    writeContext({ name: config.name, nats: cluster.natsUrl, dataDir: cluster.dataDir });
    console.log(`\nsigma cluster "${config.name}" is up: ${config.nodes.length} nodes, realms ${config.realms.join(', ')}, NATS ${cluster.natsUrl.split(',').map((u) => new URL(u).host).join(', ')}`);
    console.log(`data in ${cluster.dataDir}; programs: ${Object.keys(cluster.programs).join(', ')}; context for the sigma CLI: ${contextFile()}`);
    console.log(`\ntry:  npm run sigma -- spawn hello world --wait\n      npm run sigma -- ps --all\n`);
    const stop = async (): Promise<void> => {
      console.log('stopping…');
      await bus.close();
      await cluster.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
  });

const realm = program.command('realm').description('manage realms (tenants)');
const quotaOptions = (cmd: Command): Command =>
  cmd
    .option('--procs <n>', 'live procs it may hold at once', wholeNumber(0, QUOTA_VALUE_MAX))
    .option('--mcpu <n>', 'millicores its LC procs may reserve', wholeNumber(0, QUOTA_VALUE_MAX))
    .option('--mem-mb <n>', 'memory (MB) its LC procs may reserve', wholeNumber(0, QUOTA_VALUE_MAX))
    .option('--pool-mb <n>', 'its shared-memory pool on each node, MiB (pools made from now on)', wholeNumber(1, QUOTA_VALUE_MAX))
    .option('--disk-mb <n>', 'each of its hosts\' scratch directory, MiB (hosts started from now on)', wholeNumber(1, QUOTA_VALUE_MAX));
const quotaOf = (o: RealmQuota): RealmQuota => Object.fromEntries(QUOTA_FIELDS.flatMap((f) => (o[f] === undefined ? [] : [[f, o[f]]])));
const quotaText = (q: RealmQuota | undefined): string => (q === undefined || Object.keys(q).length === 0 ? '-' : QUOTA_FIELDS.flatMap((f) => (q[f] === undefined ? [] : [`${f}=${q[f]}`])).join(' '));
quotaOptions(realm.command('create <name>')).action((name: string, o: RealmQuota) => withClient(async (c) => {
  const quota = quotaOf(o);
  await c.createRealm(name, Object.keys(quota).length === 0 ? {} : { quota });
  out(`realm ${name} created`, { ok: true, realm: name });
}));
quotaOptions(realm.command('quota <name>').description('sets the realm\'s quota: the options given, nothing else (none: no limits)')).action((name: string, o: RealmQuota) => withClient(async (c) => {
  const quota = quotaOf(o);
  await c.setRealmQuota(name, quota);
  out(`realm ${name}: quota ${quotaText(quota)}`, { ok: true, realm: name, quota });
}));
realm.command('ls').action(() => withClient(async (c) => {
  const rs = await c.realmRecords();
  out(table(rs.map((r) => ({ realm: r.name, quota: quotaText(r.quota) })), ['realm', 'quota']), rs.map((r) => r.name));
}));
realm.command('rm <name>').description('evicts every proc of the realm, then removes it and its programs').action((name: string) => withClient(async (c) => {
  await c.removeRealm(name);
  const programs = await (await programStore(c.bus)).removeRealm(name);
  out(`realm ${name} removed (and its ${programs} programs)`, { ok: true, programs });
}));

program
  .command('spawn <program> [args...]')
  .description('spawn a proc; with --wait, wait for its exit status')
  .option('--realm <realm>', 'realm', 'default')
  .option('--lc', 'latency-critical: reserve --mcpu/--mem and place now')
  .option('--mcpu <n>', 'millicores to reserve', wholeNumber(0, MCPU_OPTION_MAX))
  .option('--mem <mb>', 'memory in MB', wholeNumber(0, MEM_MB_OPTION_MAX))
  .option('--dedicated', 'a fresh host process of its own')
  .option('--name <name>', 'service name to register')
  .option('--export <realms>', 'comma-separated realms that may call it (as <realm>/<name>)', (v) => v.split(',').filter((r) => r.length > 0))
  .addOption(new Option('--restart <policy>', 'restart policy for services').choices(['never', 'on-failure', 'always']))
  .option('--wait', 'wait for the exit status')
  .option('--wait-ms <ms>', 'with --wait: give up after this long (exit 5)', wholeNumber(1, MS_OPTION_MAX), WAIT_TIMEOUT_MS_DEFAULT)
  .action((prog: string, args: string[], o: { realm: string; lc?: boolean; mcpu?: number; mem?: number; dedicated?: boolean; name?: string; export?: string[]; restart?: 'never'; wait?: boolean; waitMs: number }) =>
    withClient(async (c) => {
      const pid = await c.spawn({ program: prog, args, realm: o.realm, lc: o.lc === true, dedicated: o.dedicated === true, ...(o.mcpu === undefined ? {} : { mcpu: o.mcpu }), ...(o.mem === undefined ? {} : { memMb: o.mem }), ...(o.name === undefined ? {} : { name: o.name }), ...(o.export === undefined ? {} : { exports: o.export }), ...(o.restart === undefined ? {} : { restart: o.restart }) });
      if (o.wait !== true) return out(pid, { pid });
      const status = await c.waitExit(pid, { timeoutMs: o.waitMs });
      out(`${pid} ${status.kind}: ${status.data === undefined ? status.message : JSON.stringify(status.data)}`, { pid, status });
      if (status.kind !== 'ok') process.exitCode = EXIT.procFailed;
    }),
  );

program
  .command('ps')
  .description('procs not yet exited; with --all, the whole table a page at a time (in pid order)')
  .option('--realm <realm>')
  .option('--all', 'include exited procs')
  .option('--limit <n>', 'with --all: records per page', wholeNumber(1, PS_PAGE_MAX), PS_PAGE_DEFAULT)
  .option('--after <pid>', 'with --all: the page after this pid (the last one the previous page printed)')
  .action((o: { realm?: string; all?: boolean; limit: number; after?: string }) =>
    withClient(async (c) => {
      const realm = o.realm === undefined ? {} : { realm: o.realm };
      const page = o.all === true ? await c.psAll({ ...realm, limit: o.limit, ...(o.after === undefined ? {} : { after: o.after }) }) : { records: await c.ps(realm) };
      const rs = page.records;
      out(table(rs.map((r) => ({ pid: r.pid, program: r.spec.program, realm: r.spec.realm, kind: r.spec.lc ? 'LC' : 'BE', state: r.state, node: r.node, status: r.status?.kind })), ['pid', 'program', 'realm', 'kind', 'state', 'node', 'status']), rs);
      if (page.next !== undefined) console.error(`more: sigma ps --all --after ${page.next}${o.realm === undefined ? '' : ` --realm ${o.realm}`}`);
    }),
  );

program.command('evict <pid>').option('--grace-ms <ms>', 'cooperative grace before forcing', wholeNumber(0, MS_OPTION_MAX), DEFAULT_EVICT_GRACE_MS).action((pid: string, o: { graceMs: number }) => withClient(async (c) => (await c.evict(pid, { graceMs: o.graceMs }), out(`evicting ${pid}`, { ok: true }))));

program
  .command('logs <pid>')
  .description("a proc's stdout and stderr")
  .option('-f, --follow', 'keep printing as it grows')
  .action(async (pid: string, o: { follow?: boolean }) => {
    const dataDir = (await clusterAddress()).dataDir;
    if (dataDir === undefined) throw new NoClusterError(undefined, 'logs are read from the data directory of a local cluster: run where its context file or cluster.config.ts is');
    const file = join(dataDir, 'logs', `${pid}.log`);
    if (!existsSync(file)) {
      console.error(`no logs for ${pid} in ${file} (logs live on the node that ran it)`);
      process.exitCode = EXIT.refused;
      return;
    }
    process.stdout.write(readFileSync(file));
    if (o.follow !== true) return;
    let at = statSync(file).size;
    watch(file, () => {
      const buf = readFileSync(file);
      process.stdout.write(buf.subarray(at));
      at = buf.length;
    });
  });

/** What a node says of its hosts' confinement: sandboxed or not, and each protection it lacks. */
const isolationText = (n: NodeRecord | undefined): string => {
  if (n?.isolation === undefined) return '?';
  const missing = n.isolation.missing.length === 0 ? '' : ` (missing: ${n.isolation.missing.join('; ')})`;
  return `${n.isolation.sandboxed ? 'sandboxed' : 'NOT sandboxed'}${missing}`;
};

program.command('nodes').action(() => withClient(async (c) => {
  const ns = await c.nodes();
  out(table(ns.map((n) => ({ id: n.id, procs: n.procs === false ? 'no' : 'yes', mcpu: n.mcpu, memMb: n.memMb, address: n.address, heartbeat: n.heartbeatSeq, hosts: isolationText(n) })), ['id', 'procs', 'mcpu', 'memMb', 'address', 'heartbeat', 'hosts']), ns);
}));

program.command('names').option('--realm <realm>').action((o: { realm?: string }) => withClient(async (c) => {
  const ns = await c.names(o.realm);
  out(table(ns.map((n) => ({ realm: n.realm, name: n.name, pid: n.pid, actor: n.actorPath, endpoint: n.endpoint === undefined ? '-' : `${n.node}:${n.endpoint}` })), ['realm', 'name', 'pid', 'actor', 'endpoint']), ns);
}));

program.command('call <name> <payload>').description("calls a service through its node's data path").option('--realm <realm>', 'realm to call from (another realm\'s service that it exports to this one: <realm>/<name>)', 'default').option('--timeout-ms <ms>', 'how long to wait for the answer', wholeNumber(1, MS_OPTION_MAX), DEFAULT_REQUEST_TIMEOUT_MS)
  .action((name: string, payload: string, o: { realm: string; timeoutMs: number }) => withClient(async (c) => {
    const answer = await c.dataPathCall(name, payload, { realm: o.realm, timeoutMs: o.timeoutMs });
    out(answer, { ok: true, answer });
  }));

program.command('datapath [node]').description("a node's data path: mode, pools per realm, refused descriptors").action((node: string | undefined) => withClient(async (c) => {
  const records = await c.nodes();
  const ids = node === undefined ? records.map((n) => n.id) : [node];
  const all = await Promise.all(ids.map(async (id) => ({ node: id, ...(await c.dataPathStatus(id)), hosts: isolationText(records.find((r) => r.id === id)) })));
  const rows = all.flatMap((s) => Object.entries(s.pools).map(([realm, p]) => ({ node: s.node, mode: s.mode, realm, usedKiB: Math.round(p.bytesUsed / 1024), freeKiB: Math.round(p.bytesFree / 1024), hosts: p.hosts })));
  const nonZero = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0));
  const channel = (r: NonNullable<(typeof all)[number]['remote']>): string => `; channel: ${r.peers}/${r.peersKnown} peers up, sent ${r.sent}, delivered ${r.delivered}, refused out ${JSON.stringify(nonZero(r.refusedOut))} in ${JSON.stringify(nonZero(r.refusedIn))}`;
  const refused = all.map((s) => `${s.node}: ${s.mode} (${s.reason}); ${s.endpoints} endpoints; refused ${JSON.stringify({ ...s.violations, ...nonZero(s.receiverRejects) })}${s.remote === undefined ? '' : channel(s.remote)}; hosts ${s.hosts}`);
  out(`${refused.join('\n')}\n${table(rows, ['node', 'mode', 'realm', 'usedKiB', 'freeKiB', 'hosts'])}`, all);
}));

programCommands(program, { withBus, out });
routeCommands(program, withClient, out, wholeNumber);
topCommand(program, () => loadConfig(program.opts<{ config: string }>().config), out, json);

try {
  await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage; // commander has said what was wrong
  } else if (e instanceof ControlError) {
    console.error(`sigma: ${e.message}`);
    process.exitCode = e.type === 'no-scheduler' ? EXIT.unavailable : EXIT.refused;
  } else if (e instanceof DataPathCallError) {
    console.error(`sigma: ${e.type}: ${e.message}`);
    process.exitCode = e.type === 'node-unreachable' ? EXIT.unavailable : EXIT.procFailed;
  } else if (e instanceof DeployError) {
    console.error(`sigma: ${e.type}: ${e.message}`);
    process.exitCode = isUsageError(e) ? EXIT.usage : EXIT.refused;
  } else if (e instanceof NoClusterError || e instanceof ContextError) {
    console.error(`sigma: ${e.message}`);
    process.exitCode = EXIT.unavailable;
  } else if (e instanceof WaitTimeoutError) {
    console.error(`sigma: ${e.message}`);
    process.exitCode = EXIT.timeout;
  } else {
    console.error(`sigma: ${(e as Error).message}`);
    process.exitCode = EXIT.unavailable;
  }
}
