import test from 'ava';
import { RouteStore } from '../src/gateway/route-store.js';
import { testCluster, startService, untilScheduler, waitFor, type TestCluster } from './helpers/cluster.js';
import { http } from './helpers/http.js';

/**
 * Two real node processes: a route is seen by both gateways, and a gateway on a node where the route's
 * realm has no host at all still serves it (its endpoint and pool live as long as the realm has routes),
 * reaching the service on the other node through the node-to-node channel.
 */
const WAIT_MS = 30_000;
let tc: TestCluster;

test.before(async () => {
  tc = await testCluster({ nodes: 2, node: { mcpu: 4000, memMb: 8192 }, gateway: { port: 0 } }, ['default']);
});
test.after.always(async () => tc?.stop());

test.serial('gateway - every node serves every route; a node without a host of the realm keeps an endpoint for it while the realm has routes', async (t) => {
  await untilScheduler(() => tc.client.createRealm('edge'));
  const echo = await startService(tc, 'echo', 'echo', { realm: 'edge' }, WAIT_MS);
  const home = echo.rec.node!;
  const away = [...tc.cluster.nodes.keys()].find((n) => n !== home)!;
  const ports = await waitFor(async () => [tc.cluster.gatewayPorts.get(home) ?? 0, tc.cluster.gatewayPorts.get(away) ?? 0], (p) => p.every((x) => x > 0), WAIT_MS);
  const status = (node: string) => tc.client.dataPathStatus(node, { timeoutMs: 5_000 });
  t.is((await status(away)).pools['edge'], undefined, 'no host of realm edge on the other node: no pool there yet');

  const routes = await RouteStore.open(tc.bus);
  const added = await routes.add({ realm: 'edge', name: 'echo', method: 'POST', path: '/echo' });
  t.is(added._tag, 'Right');
  for (const port of ports) {
    const a = await waitFor(() => http(port!, 'POST', '/echo', 'across'), (r) => r.status === 200, WAIT_MS);
    t.is(a.body, 'across');
  }
  const pool = (await status(away)).pools['edge'];
  t.is(pool?.hosts, 0, 'the gateway keeps the realm\'s pool on a node with no host of it');
  t.is(pool?.bytesUsed, 0, 'every buffer back');

  t.true(await routes.remove('edge', 'echo'));
  await waitFor(async () => (await status(away)).pools['edge'], (p) => p === undefined, WAIT_MS);
  t.is((await http(ports[1]!, 'POST', '/echo', 'x')).status, 404);
});

test.serial('gateway - a removed realm\'s routes answer 404 on every node and its pools go, though the route records stay', async (t) => {
  await untilScheduler(() => tc.client.createRealm('brief'));
  await startService(tc, 'echo', 'echo', { realm: 'brief' }, WAIT_MS);
  const routes = await RouteStore.open(tc.bus);
  t.is((await routes.add({ realm: 'brief', name: 'echo', method: 'POST', path: '/brief' }))._tag, 'Right');
  const nodes = [...tc.cluster.nodes.keys()];
  for (const n of nodes) {
    const a = await waitFor(() => http(tc.cluster.gatewayPorts.get(n)!, 'POST', '/brief', 'short'), (r) => r.status === 200, WAIT_MS);
    t.is(a.body, 'short');
  }
  await tc.client.removeRealm('brief');
  for (const n of nodes) {
    t.is((await waitFor(() => http(tc.cluster.gatewayPorts.get(n)!, 'POST', '/brief', 'x'), (r) => r.status === 404, WAIT_MS)).status, 404);
    await waitFor(async () => (await tc.client.dataPathStatus(n, { timeoutMs: 5_000 })).pools['brief'], (p) => p === undefined, WAIT_MS);
  }
  t.deepEqual((await routes.list('brief')).map((r) => r.name), ['echo'], 'the record stays: the realm may come back');
});
