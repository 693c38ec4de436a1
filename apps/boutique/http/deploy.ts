import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVICE_NAMES } from '../logic/services.js';

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const READY_TIMEOUT_MS = 20_000;

export interface HttpBoutique {
  /** The frontend's port. */
  port: number;
  pids: number[];
  stop(): Promise<void>;
}

/** The HTTP-microservices deployment: one Node process per service; leaves first, then checkout, then the frontend. */
export async function startHttpBoutique(): Promise<HttpBoutique> {
  const children: ChildProcess[] = [];
  const ports: Record<string, number> = {};
  const start = (name: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const c = fork(SERVER, [name, JSON.stringify(ports)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
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
    await Promise.all(SERVICE_NAMES.filter((n) => n !== 'checkout').map(start));
    await start('checkout');
    const port = await start('frontend');
    return { port, pids: children.map((c) => c.pid!), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
