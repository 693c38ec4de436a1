import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsPortError } from './errors.js';

export interface NatsServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** 0 picks a free port. */
  port?: number;
  /** JetStream store; a temporary directory (removed on stop) when absent. */
  dataDir?: string;
  /** Keep dataDir on stop (a cluster's state survives restarts). */
  keepDataDir?: boolean;
  readyTimeoutMs?: number;
}

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

export function findNatsServer(): string | undefined {
  for (const c of CANDIDATES) if (existsSync(c)) return c;
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir !== '' && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a real nats-server with JetStream on loopback and resolves once it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  if (bin === undefined) throw new NatsPortError('server-missing', 'nats-server is not installed; run `apt-get install nats-server` (Debian) or `npm test`, whose bootstrap installs it');
  const port = options.port === undefined || options.port === 0 ? await freePort() : options.port;
  const temp = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sigma-nats-'));
  mkdirSync(dataDir, { recursive: true });
  const child: ChildProcess = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit); // no orphaned servers
  const deadline = Date.now() + (options.readyTimeoutMs ?? 10_000);
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new NatsPortError('server-start', `nats-server exited with code ${child.exitCode}: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new NatsPortError('server-start', `nats-server did not accept connections on port ${port}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((r) => {
          child.once('exit', () => r());
          child.kill('SIGTERM');
        });
      }
      if (temp && options.keepDataDir !== true) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
