import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SigmaClient } from '../../src/client/client.js';
import { RouteStore } from '../../src/gateway/route-store.js';
import type { App } from './app.js';

const SERVER = fileURLToPath(new URL('./http-server.js', import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 30_000;

export interface HttpDeployment {
  port: number;
  pids: number[];
  stop(): Promise<void>;
}

/** The HTTP-microservices deployment of `app` (its module file exports `app`): a Node process per service, then the frontend. */
export async function startHttpApp(app: App, appModule: string): Promise<HttpDeployment> {
  const children: ChildProcess[] = [];
  const ports: Record<string, number> = {};
  const start = (name: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const c = fork(SERVER, [appModule, name, JSON.stringify(ports)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
      children.push(c);
      const timer = setTimeout(() => reject(new Error(`${name} did not listen within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      c.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
      c.on('message', (m: { t?: string; port?: number }) => {
        if (m.t !== 'listening') return;
        clearTimeout(timer);
        c.removeAllListeners('exit');
        resolve((ports[name] = m.port!));
      });
    });
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : (c.once('exit', () => r()), c.kill())))));
  };
  try {
    for (const s of app.services) await start(s); // in order: a service's peers are up before it
    const port = await start('frontend');
    return { port, pids: children.map((c) => c.pid!), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `app` on sigma-ts: its services and frontend as service procs of `realm`, the frontend's routes on every gateway. */
export async function deploySigmaApp(client: SigmaClient, app: App, programs: { service: string; frontend: string }, realm: string): Promise<string[]> {
  if (!(await client.realmRecords()).some((r) => r.name === realm)) await client.createRealm(realm);
  const pids: string[] = [];
  // Latency-critical services (`lc`), as a web application's are: they share the realm's LC host, which
  // runs at a core's CPU weight. As best-effort procs they ran in a host at cpu.idle, which gets only the
  // CPU nothing else wants, and under load waited behind the gateway and the load generator.
  const spec = { realm, restart: 'on-failure', lc: true } as const;
  for (const name of app.services) pids.push(await client.spawn({ ...spec, program: programs.service, args: [name], name }));
  pids.push(await client.spawn({ ...spec, program: programs.frontend, name: `${app.name}-frontend` }));
  for (const pid of pids) await client.waitStart(pid, { timeoutMs: START_TIMEOUT_MS });
  const routes = await RouteStore.open(client.bus);
  for (const [i, [method, path]] of app.routes.entries()) {
    const r = await routes.add({ realm, name: `${app.name}-${i}`, method, path, target: `${app.name}-frontend`, envelope: 'http', deadlineMs: 10_000 });
    if (r._tag === 'Left') throw r.left;
  }
  return pids;
}
