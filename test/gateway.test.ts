import test from 'ava';
import { execFile } from 'node:child_process';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { NODE as NODE_RPC, call, type RouteInput } from '../src/control/protocol/index.js';
import type { DataPathStatus } from '../src/datapath/status.js';
import { RouteStore } from '../src/gateway/route-store.js';
import { DEFAULT_IN_FLIGHT_MAX } from '../src/datapath/credits.js';
import { testCluster, startService, waitFor, type TestCluster } from './helpers/cluster.js';
import { http, rawExchange } from './helpers/http.js';

/**
 * The gateway end to end: a real node process with its gateway, real proc hosts, a real nats-server and
 * the node's data path. Every error status is produced here, each followed by a check that the realm's
 * pool is back to what it was before (every buffer returned).
 */
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/procs/${name}.js`, import.meta.url));
const NODE = 'node-1';
const WAIT_MS = 30_000;
const WRITE_TIMEOUT_MS = 800;
const BODY_TIMEOUT_MS = 800;
let tc: TestCluster;
let routes: RouteStore;
let port: number;

test.before(async () => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 8000, memMb: 16384 }, datapath: 'auto', programs: { 'gw-svc': fixture('gw-svc') }, gateway: { port: 0, limits: { writeTimeoutMs: WRITE_TIMEOUT_MS, bodyTimeoutMs: BODY_TIMEOUT_MS } } }, ['default', 'other']);
  routes = await RouteStore.open(tc.bus);
  port = await waitFor(async () => tc.cluster.gatewayPorts.get(NODE) ?? 0, (p) => p > 0, WAIT_MS);
});
test.after.always(async () => tc?.stop());

const CLI = fileURLToPath(new URL('../src/cli/sigma.js', import.meta.url));
/** The `sigma` CLI against this cluster: exit code and output. */
const sigma = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, '--nats', tc.cluster.natsUrl, ...args], { timeout: WAIT_MS, encoding: 'utf8' }, (_e, stdout, stderr) => resolve({ code: child.exitCode ?? -1, stdout, stderr }));
  });

const status = async (): Promise<DataPathStatus> => {
  const r = await call(tc.bus, NODE_RPC.subject(NODE), NODE_RPC.dataPathStatus, { op: 'datapath-status' }, 5_000);
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.status;
};
const used = async (realm = 'default'): Promise<number> => (await status()).pools[realm]?.bytesUsed ?? -1;
/** The pool is whole again: back to `base` bytes in use. */
const whole = async (base: number, realm = 'default'): Promise<number> => waitFor(() => used(realm), (u) => u === base, WAIT_MS);
const addRoute = async (r: RouteInput, probe?: { method: string; path: string }): Promise<void> => {
  const added = await routes.add(r);
  if (added._tag === 'Left') throw added.left;
  // Every gateway follows the bucket: wait until this one routes it (a 404 before).
  const p = probe ?? { method: r.method ?? 'GET', path: r.path.replace(/\/\*$/, '/x').replace(/:[a-z]+/g, 'x') };
  await waitFor(() => http(port, p.method, p.path, p.method === 'GET' || p.method === 'HEAD' ? undefined : 'probe'), (a) => a.status !== 404, WAIT_MS);
};

test.serial('gateway - a route to a service and a chain; keep-alive, chunked bodies and pipelining; the body enters the pool once and every buffer comes back', async (t) => {
  await startService(tc, 'echo', 'echo', {}, WAIT_MS);
  await startService(tc, 'stage', 's2', {}, WAIT_MS);
  await startService(tc, 'stage', 's1', { args: ['s2'] }, WAIT_MS);
  await addRoute({ realm: 'default', name: 'echo', method: 'POST', path: '/echo' });
  await addRoute({ realm: 'default', name: 'chain', method: 'POST', path: '/chain', target: ['s1', 's2'] });
  const base = await used();

  const a = await http(port, 'POST', '/echo', 'hello');
  t.is(a.status, 200);
  t.is(a.body, 'hello');
  t.is((await http(port, 'POST', '/chain', 'abc')).body, 'cde', 'two stages each added one, the buffer forwarded between them');

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const k1 = await http(port, 'POST', '/echo', 'one', { agent });
  const k2 = await http(port, 'POST', '/echo', 'two', { agent });
  t.deepEqual([k1.body, k2.body, k2.reusedSocket], ['one', 'two', true], 'the second request rode the first one connection');
  agent.destroy();

  const chunked = await http(port, 'POST', '/echo', { chunks: ['chun', 'ked ', 'body'] });
  t.is(chunked.body, 'chunked body');

  const req = (body: string): string => `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const pipelined = await rawExchange(port, req('first') + 'POST /chain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + req('third'), 3);
  t.deepEqual(pipelined, [{ status: 200, body: 'first' }, { status: 200, body: 'cde' }, { status: 200, body: 'third' }], 'three requests in one write answered in order');

  const big = 'z'.repeat(300_000);
  t.is((await http(port, 'POST', '/echo', big)).body.length, big.length);
  t.is(await whole(base), base);
});

test.serial('gateway - 404, 413, 503 with Retry-After, 502, 504 and slow clients: each answered, and the pool whole afterwards', async (t) => {
  await startService(tc, 'gw-svc', 'svc', {}, WAIT_MS);
  await addRoute({ realm: 'default', name: 'svc', method: 'POST', path: '/svc', bodyBytesMax: 1 << 20, deadlineMs: 500 });
  await addRoute({ realm: 'default', name: 'small', method: 'POST', path: '/small', target: 'svc', bodyBytesMax: 8 });
  const base = await used();

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const nf = await http(port, 'GET', '/nowhere', undefined, { agent });
  t.is(nf.status, 404);
  t.is(JSON.parse(nf.body).error, 'not-found');
  t.true((await http(port, 'GET', '/nowhere', undefined, { agent })).reusedSocket, 'a 404 keeps the connection');
  agent.destroy();

  t.is((await http(port, 'POST', '/small', 'x'.repeat(9))).status, 413);
  t.is((await http(port, 'POST', '/small', { chunks: ['xxxx', 'xxxx', 'x'] })).status, 413, 'a chunked body is cut at the limit too');
  t.is((await http(port, 'POST', '/small', 'whoami')).status, 200);
  t.is(await whole(base), base);

  // The pool refuses: the service holds every 256 KiB buffer it can get, then a body of that size finds none.
  const size = 256 << 10;
  t.regex((await http(port, 'POST', '/svc', `fill:${size}`)).body, /^\d+ pool-exhausted$/);
  const full = await http(port, 'POST', '/svc', 'x'.repeat(size));
  t.is(full.status, 503, full.body);
  t.is(full.headers['retry-after'], '1');
  t.is(JSON.parse(full.body).error, 'unavailable');
  t.is((await http(port, 'POST', '/svc', 'free')).body, 'freed');
  t.is(await whole(base), base);

  // No one serves the target: 503 as well.
  await addRoute({ realm: 'default', name: 'ghost', method: 'GET', path: '/ghost', target: 'nobody' });
  const ghost = await http(port, 'GET', '/ghost');
  t.is(ghost.status, 503);
  t.truthy(ghost.headers['retry-after']);

  // No credits: the service holds as many requests as the gateway's credits allow (until released); one
  // more waits for a credit until the route's deadline and is refused 503.
  await startService(tc, 'gw-svc', 'busy', {}, WAIT_MS);
  await addRoute({ realm: 'default', name: 'busy', method: 'POST', path: '/busy', deadlineMs: 2_000 });
  const holding = Array.from({ length: DEFAULT_IN_FLIGHT_MAX }, () => http(port, 'POST', '/busy', 'wait'));
  const inFlight = async (): Promise<number> => Number(/sigma_gateway_requests_in_flight\{[^}]*\} (\d+)/.exec((await http(port, 'GET', '/metrics')).body)?.[1]);
  await waitFor(inFlight, (n) => n === DEFAULT_IN_FLIGHT_MAX, WAIT_MS);
  await waitFor(used, (u) => u >= base + DEFAULT_IN_FLIGHT_MAX * 4, WAIT_MS); // each request's buffer is with the service
  const noCredit = await http(port, 'POST', '/busy', 'x');
  t.is(noCredit.status, 503, noCredit.body);
  t.regex(noCredit.body, /credit/);
  t.deepEqual([...new Set((await Promise.all(holding)).map((r) => r.status))], [504], 'the held requests passed their deadline');
  // Released from another endpoint (the gateway's credits to it are spent): the late answers are freed.
  const released = await tc.client.waitExit(await tc.client.spawn({ program: 'dpcall', args: ['busy', 'release'] }), { timeoutMs: WAIT_MS });
  t.is(released.data, String(DEFAULT_IN_FLIGHT_MAX));
  t.is(await whole(base), base);

  // The proc fails the request: 502; the service stays up.
  const failed = await http(port, 'POST', '/svc', 'throw');
  t.is(failed.status, 502);
  t.regex(failed.body, /asked to fail/);
  t.is((await http(port, 'POST', '/svc', 'still')).body, 'still');

  // Past the deadline: 504 at once; the late answer is freed when it comes.
  const late = await http(port, 'POST', '/svc', 'sleep:1500');
  t.is(late.status, 504);
  t.is(JSON.parse(late.body).error, 'deadline');
  t.is(await whole(base), base);

  // A proc that dies mid-request: 502, and (restarted by its policy) the next request succeeds.
  await startService(tc, 'gw-svc', 'mortal', { dedicated: true, restart: 'always' }, WAIT_MS);
  await addRoute({ realm: 'default', name: 'mortal', method: 'POST', path: '/mortal' });
  t.is((await http(port, 'POST', '/mortal', 'hi')).body, 'hi');
  const died = await http(port, 'POST', '/mortal', 'die');
  t.is(died.status, 502, died.body);
  const again = await waitFor(() => http(port, 'POST', '/mortal', 'back'), (r) => r.status === 200, WAIT_MS);
  t.is(again.body, 'back');
  t.is(await whole(base), base);

  // A client that never reads an 8 MiB answer: the write bound cuts it and the answer's buffer goes back.
  const stalled = connect(port, '127.0.0.1');
  await new Promise<void>((r) => stalled.once('connect', () => r()));
  stalled.pause();
  const body = `big:${8 << 20}`;
  stalled.write(`POST /svc HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await waitFor(() => used(), (u) => u >= base + (8 << 20), WAIT_MS);
  const closed = new Promise<void>((r) => stalled.once('close', () => r()));
  t.is(await whole(base), base, 'the write bound cut the client and released the answer');
  stalled.resume();
  await closed;

  // A client that never finishes its body: 408 after the bound, its buffer back.
  const trickle = connect(port, '127.0.0.1');
  await new Promise<void>((r) => trickle.once('connect', () => r()));
  const got: Buffer[] = [];
  trickle.on('data', (d: Buffer) => got.push(d));
  trickle.write('POST /svc HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly this');
  await new Promise<void>((r) => trickle.once('close', () => r()));
  t.regex(Buffer.concat(got).toString(), /^HTTP\/1.1 408/);
  t.is(await whole(base), base);

  const metrics = (await http(port, 'GET', '/metrics')).body;
  for (const kind of ['not-found', 'too-large', 'unavailable', 'proc-failed', 'deadline', 'slow-client', 'body-timeout']) t.regex(metrics, new RegExp(`sigma_gateway_errors_total\\{[^}]*kind="${kind}"`), kind);
});

test.serial('gateway - a route of one realm reaches only its own services and what another realm exports to it; route commands of a realm see and change only its routes', async (t) => {
  await startService(tc, 'gw-svc', 'secret', { realm: 'other' }, WAIT_MS);
  await startService(tc, 'gw-svc', 'shared', { realm: 'other', exports: ['default'] }, WAIT_MS);
  await addRoute({ realm: 'default', name: 'steal', method: 'POST', path: '/steal', target: 'secret' });
  await addRoute({ realm: 'default', name: 'steal2', method: 'POST', path: '/steal2', target: 'other/secret' });
  await addRoute({ realm: 'default', name: 'borrow', method: 'POST', path: '/borrow', target: 'other/shared' });
  await addRoute({ realm: 'other', name: 'own', method: 'POST', path: '/own', target: 'secret' });
  const bases = [await used('default'), await used('other')];

  const steal = await http(port, 'POST', '/steal', 'whoami');
  t.is(steal.status, 503, 'a plain name resolves in the route\'s realm only');
  t.notRegex(steal.body, /^other /);
  const steal2 = await http(port, 'POST', '/steal2', 'whoami');
  t.is(steal2.status, 503, 'realm/name of a service not exported to the route\'s realm');
  t.regex(steal2.body, /no service of that name in realm other/);
  const borrowed = await http(port, 'POST', '/borrow', 'whoami');
  t.is(borrowed.status, 200);
  t.regex(borrowed.body, /^other other\./, 'the exported service answered, copied across the pools');
  t.regex((await http(port, 'POST', '/own', 'whoami')).body, /^other other\./, 'realm other reaches its own');

  // The route commands act for one realm, through the library and the CLI alike.
  const added = await sigma('--json', 'route', 'add', 'mine', 'GET', '/mine', 'secret', '--realm', 'other');
  t.is(added.code, 0, added.stderr);
  const ls = await sigma('--json', 'route', 'ls', '--realm', 'other');
  t.deepEqual((JSON.parse(ls.stdout) as Array<{ name: string }>).map((r) => r.name), ['mine', 'own']);
  t.false(ls.stdout.includes('steal'), 'realm default\'s routes are not listed for realm other');
  const rmOther = await sigma('route', 'rm', 'borrow', '--realm', 'other');
  t.is(rmOther.code, 3, 'realm other cannot remove realm default\'s route');
  t.is((await http(port, 'POST', '/borrow', 'still')).status, 200);
  t.is((await sigma('route', 'add', 'bad', 'GET', 'no-slash', '--realm', 'other')).code, 3);
  t.is((await sigma('route', 'rm', 'mine', '--realm', 'other')).code, 0);
  t.deepEqual((await routes.list('other')).map((r) => r.name), ['own']);
  t.deepEqual((await routes.list('default')).map((r) => r.name).filter((n) => n.startsWith('st')), ['steal', 'steal2']);
  t.false(await routes.remove('other', 'steal'), 'realm other cannot remove a route of realm default');
  t.is((await http(port, 'POST', '/steal', 'x')).status, 503, 'and the route is still there');
  const clash = await routes.add({ realm: 'other', name: 'clash', method: 'POST', path: '/borrow', target: 'secret' });
  t.is(clash._tag, 'Left');
  if (clash._tag === 'Left') t.notRegex(clash.left.message, /default/, 'a taken path does not say whose it is');
  const [d, o] = bases as [number, number];
  t.is(await whole(d, 'default'), d);
  t.is(await whole(o, 'other'), o);
});

test.serial('gateway - routes change at run time; an http route sees method, path params, query and headers, and answers with its own status', async (t) => {
  await startService(tc, 'gw-svc', 'web', { args: ['http'] }, WAIT_MS);
  await addRoute({ realm: 'default', name: 'product', method: 'GET', path: '/product/:id', target: 'web', envelope: 'http' });
  const a = await http(port, 'GET', '/product/OLJCESPC7Z?currency=EUR', undefined, { headers: { cookie: 'shop_session-id=42' } });
  t.is(a.status, 201);
  t.is(a.headers['x-served-by'], 'default');
  const seen = JSON.parse(a.body) as { head: { method: string; params: Record<string, string>; query: Record<string, string>; headers: Record<string, string> } };
  t.is(seen.head.method, 'GET');
  t.deepEqual(seen.head.params, { id: 'OLJCESPC7Z' });
  t.deepEqual(seen.head.query, { currency: 'EUR' });
  t.is(seen.head.headers['cookie'], 'shop_session-id=42');

  t.true(await routes.remove('default', 'product'));
  await waitFor(() => http(port, 'GET', '/product/1'), (r) => r.status === 404, WAIT_MS);
  t.pass();
});

test.serial('gateway - /metrics: requests and latency per route, calls per proc, pool use, data-path counters, procs per realm', async (t) => {
  const m = (await http(port, 'GET', '/metrics')).body;
  t.regex(m, /sigma_gateway_requests_total\{[^}]*realm="default",route="echo",code="200"[^}]*\} \d+/);
  t.regex(m, /sigma_gateway_request_seconds_bucket\{[^}]*route="echo"/);
  t.regex(m, /sigma_gateway_proc_calls_total\{[^}]*proc="echo",outcome="ok"/);
  t.regex(m, /sigma_pool_bytes_used\{[^}]*realm="default"/);
  t.regex(m, /sigma_procs\{[^}]*realm="default"[^}]*\} [1-9]/);
  t.regex(m, /sigma_procs_started_total\{[^}]*realm="other"/);
  t.regex(m, /sigma_procs_exited_total\{[^}]*realm="default",kind="crashed"/);
  const st = await status();
  if (st.mode === 'bpf') {
    const msgs = Number(/sigma_datapath_kernel_messages\{[^}]*\} (\d+)/.exec(m)?.[1]);
    t.true(msgs > 0, 'the verdict\'s per-CPU counters, summed');
    t.regex(m, /sigma_datapath_kernel_bytes\{[^}]*\} [1-9]/);
  } else t.regex(m, /sigma_datapath_hub_routed\{[^}]*\} [1-9]/);
});
