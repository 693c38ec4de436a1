import test from 'ava';
import fc from 'fast-check';
import { connect } from 'node:net';
import type { NameRecord } from '../src/control/protocol/index.js';
import { parseRoute, RouteError } from '../src/control/protocol/index.js';
import { Endpoint } from '../src/datapath/endpoint.js';
import { linkPair } from '../src/datapath/frames.js';
import { Hub } from '../src/datapath/hub.js';
import { Pool } from '../src/datapath/pool.js';
import { ProcData } from '../src/datapath/proc-data.js';
import { Gateway, type GatewayLimits } from '../src/gateway/gateway.js';
import { GatewayMetrics } from '../src/gateway/metrics.js';
import { realTimers } from '../src/ports/index.js';
import { silent } from './helpers/actors.js';
import { http } from './helpers/http.js';

/**
 * The Gateway over a real pool, the real hub and real ProcData endpoints in one process (the node's
 * endpoint of the realm and a service's): its bounds and its answer to garbage, fast and without a
 * cluster. After each test the pool is empty.
 */
async function world(limits: Partial<GatewayLimits> = {}) {
  const pool = Pool.format(new ArrayBuffer(16 << 20));
  if (pool._tag === 'Left') throw pool.left;
  const hub = new Hub();
  hub.attachPool('r', pool.right);
  const lookup = async (key: string): Promise<NameRecord | undefined> => (key === 'r.svc' ? { realm: 'r', name: 'svc', pid: 'p', actorPath: 'x', node: 'n1', endpoint: 2 } : undefined);
  const proc = (id: number): ProcData => {
    const [mine, hubSide] = linkPair();
    const r = hub.attach({ realm: 'r', endpoint: id }, hubSide);
    if (r._tag === 'Left') throw r.left;
    return new ProcData({ endpoint: new Endpoint({ id, pool: pool.right, link: mine, timers: realTimers }), node: 'n1', realm: 'r', timers: realTimers, lookup, log: silent });
  };
  const local = proc(1);
  const svc = proc(2);
  const waiting: Array<() => void> = [];
  svc.serve(async (msg) => {
    if (new TextDecoder().decode(msg.bytes) === 'wait') await new Promise<void>((r) => waiting.push(r));
    return msg;
  });
  const metrics = new GatewayMetrics({ node: 'n1', datapath: () => undefined });
  const gw = new Gateway({ node: 'n1', port: 0, host: '127.0.0.1', datapath: { local: () => local }, lookup: () => lookup, log: silent, metrics, limits });
  const port = await gw.start();
  gw.setRealm('r', true);
  const route = parseRoute({ realm: 'r', name: 'svc', method: 'POST', path: '/svc', bodyBytesMax: 4096 });
  if (route instanceof RouteError) throw route;
  gw.putRoute('r.svc', route);
  return {
    port,
    used: (): number => pool.right.stats().bytesUsed,
    inFlight: async (): Promise<number> => (await metrics.inFlight.get()).values[0]?.value ?? 0,
    release: () => waiting.splice(0).forEach((r) => r()),
    async close() {
      await gw.close();
      local.close();
      svc.close();
    },
  };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 5_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error(`never happened: ${what}`);
};

test('gateway in process - past requestsInFlightMax a request is refused 503 with Retry-After at once; nothing leaks', async (t) => {
  const w = await world({ requestsInFlightMax: 2, retryAfterS: 7 });
  const held = [http(w.port, 'POST', '/svc', 'wait'), http(w.port, 'POST', '/svc', 'wait')];
  for (let i = 0; i < 5_000 && (await w.inFlight()) < 2; i++) await new Promise((r) => setTimeout(r, 2));
  t.is(await w.inFlight(), 2, 'two requests held by the service');
  const busy = await http(w.port, 'POST', '/svc', 'x');
  t.is(busy.status, 503);
  t.is(busy.headers['retry-after'], '7');
  t.is(JSON.parse(busy.body).error, 'busy');
  w.release();
  t.deepEqual((await Promise.all(held)).map((a) => [a.status, a.body]), [[200, 'wait'], [200, 'wait']]);
  t.is((await http(w.port, 'POST', '/svc', 'after')).body, 'after');
  await until(() => w.used() === 0, 'the pool empty');
  await w.close();
});

test('gateway in process - garbage on the socket costs that connection only: the gateway keeps serving and the pool stays whole', async (t) => {
  const w = await world();
  const send = (bytes: Uint8Array): Promise<void> =>
    new Promise((resolve) => {
      const s = connect(w.port, '127.0.0.1', () => s.end(bytes));
      s.on('data', () => {});
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(2_000, () => s.destroy());
    });
  const heads = fc.constantFrom('POST /svc HTTP/1.1\r\n', 'GET / HTTP/1.1\r\n', 'POST /svc HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n', 'POST /svc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', '');
  await fc.assert(
    fc.asyncProperty(heads, fc.uint8Array({ maxLength: 300 }), async (head, tail) => {
      await send(Buffer.concat([Buffer.from(head), tail]));
    }),
    { numRuns: 60 },
  );
  t.is((await http(w.port, 'POST', '/svc', 'still here')).body, 'still here');
  await until(() => w.used() === 0, 'the pool empty');
  await w.close();
});
