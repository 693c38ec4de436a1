import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSystem, type ActorSystem } from '../../src/actors/index.js';
import { SigmaClient, untilScheduler } from '../../src/client/client.js';
import { startCluster, type RunningCluster } from '../../src/cluster/launcher.js';
import { defineCluster, type ClusterInput } from '../../src/config/cluster.js';
import { natsTransport } from '../../src/control/nats-transport.js';
import { connectBus } from '../../src/nats/real.js';
import type { Bus } from '../../src/nats/types.js';
import { ACTOR, type NameRecord } from '../../src/control/protocol/index.js';
import type { SpecInput } from '../../src/proc/spec.js';
import { silent } from './actors.js';

export interface TestCluster {
  cluster: RunningCluster;
  bus: Bus;
  client: SigmaClient;
  /**
   * An actor system in the test process, reachable over NATS, in a realm's part of the actor namespace
   * (a realm's services may answer only there): for asking that realm's service procs.
   */
  system(realm?: string): ActorSystem;
  stop(): Promise<void>;
}

/** A real cluster: embedded nats-server on a free port, node processes, a data dir of its own. */
export async function testCluster(input: ClusterInput = {}, realms = ['default']): Promise<TestCluster> {
  process.env['SIGMA_LOG'] ??= 'warn';
  const dataDir = mkdtempSync(join(tmpdir(), 'sigma-test-'));
  // Gateways on free ports unless a test asks (tests run side by side; 8080 is the shipped default).
  const config = defineCluster({ nodes: 3, gateway: { port: 0 }, ...input, nats: { port: 0, ...input.nats, embedded: true }, dataDir, realms });
  const cluster = await startCluster(config);
  const bus = await connectBus({ servers: [cluster.natsUrl], name: 'test', replicas: config.nats.replicas });
  const client = await SigmaClient.connect(bus);
  for (const r of realms) await untilScheduler(() => client.createRealm(r));
  const systems = new Map<string, ActorSystem>();
  const system = (realm = 'default'): ActorSystem => {
    let sys = systems.get(realm);
    if (sys === undefined) systems.set(realm, (sys = createSystem({ name: ACTOR.realmSystem(realm, `test-${process.pid}`), logger: silent, transport: natsTransport(bus) })));
    return sys;
  };
  return {
    cluster,
    bus,
    client,
    system,
    async stop() {
      for (const sys of systems.values()) await sys.shutdown();
      await bus.close();
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { untilScheduler };

/** Polls `get` every 50 ms until `ok` holds; past `timeoutMs` it fails saying what it last saw. */
export async function waitFor<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(v).slice(0, 800)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Spawns a named data-path service and waits until its name carries an endpoint. */
export async function startService(tc: TestCluster, program: string, name: string, options: Partial<SpecInput> = {}, timeoutMs = 30_000): Promise<{ pid: string; rec: NameRecord }> {
  const realm = options.realm ?? 'default';
  const pid = await untilScheduler(() => tc.client.spawn({ program, name, ...options }));
  await tc.client.waitStart(pid, { timeoutMs });
  const rec = await waitFor(async () => (await tc.client.names(realm)).find((n) => n.name === name && n.pid === pid), (r) => r?.endpoint !== undefined, timeoutMs);
  return { pid, rec: rec! };
}

/** A restart of a service: evicts its proc, then spawns it again under the same name; the new proc's pid. */
export async function restartService(tc: TestCluster, pid: string, program: string, name: string, options: Partial<SpecInput> = {}, timeoutMs = 30_000): Promise<string> {
  await tc.client.evict(pid);
  const st = await tc.client.waitExit(pid, { timeoutMs });
  if (st.kind !== 'evicted') throw new Error(`${name} (${pid}) ended ${st.kind} (${st.message}), not evicted`);
  return (await startService(tc, program, name, options, timeoutMs)).pid;
}
