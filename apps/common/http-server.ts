/**
 * One service of an app as a plain HTTP microservice: `node http-server.js <app module> <service>
 * <peers-json>`, on a free port it reports to its parent (IPC). Services answer `POST /<method>` with
 * JSON args; they call each other over undici keep-alive pools. `frontend` answers the original URLs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { parseCookies, parseForm, serveCall, type App, type Rpc } from './app.js';

const [appModule, name, peersJson] = process.argv.slice(2) as [string, string, string];
const app = ((await import(pathToFileURL(appModule).href)) as { app: App }).app;
const peers = JSON.parse(peersJson ?? '{}') as Record<string, number>;
const POOL_CONNECTIONS = 64;
const pools = new Map<string, Pool>();
const rpc: Rpc = async (service, method, args) => {
  let pool = pools.get(service);
  if (pool === undefined) {
    const port = peers[service];
    if (port === undefined) throw new Error(`${name} has no address of ${service}`);
    pools.set(service, (pool = new Pool(`http://127.0.0.1:${port}`, { connections: POOL_CONNECTIONS, keepAliveTimeout: 60_000 })));
  }
  const res = await pool.request({ path: `/${method}`, method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' } });
  const r = (await res.body.json()) as { ok: boolean; value?: unknown; error?: string };
  if (!r.ok) throw new Error(r.error ?? `${service}.${method} failed`);
  return r.value;
};

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString()));
    req.on('error', reject);
  });

async function serveFrontend(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const body = await readBody(req);
  const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true ? parseForm(body) : {};
  const a = await app.frontend({ method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), form, cookies: parseCookies(req.headers.cookie), ...(req.headers.referer === undefined ? {} : { referer: req.headers.referer }) }, rpc);
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}

const handlers = name === 'frontend' ? undefined : app.handlersOf(name);
const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const failed = (e: unknown): void => {
    res.statusCode = 500;
    res.end(String(e));
  };
  if (handlers === undefined) return void serveFrontend(req, res).catch(failed);
  void readBody(req)
    .then(async (body) => {
      const out = JSON.stringify(await serveCall(handlers, (req.url ?? '/').slice(1), JSON.parse(body) as unknown[], rpc));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    })
    .catch(failed);
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ t: 'listening', name, port: typeof a === 'object' && a !== null ? a.port : 0 });
});
process.on('disconnect', () => process.exit(0));
