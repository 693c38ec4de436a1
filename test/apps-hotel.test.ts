import test from 'ava';
import { fileURLToPath } from 'node:url';
import { deploySigmaApp, startHttpApp, type HttpDeployment } from '../apps/common/deploy.js';
import { app } from '../apps/hotel/app.js';
import { restartService, testCluster, waitFor, type TestCluster } from './helpers/cluster.js';
import { http } from './helpers/http.js';

/** DeathStarBench's hotel reservation in both deployments of the same code: the same answers, and right ones. */
const WAIT_MS = 30_000;
const dist = (p: string): string => fileURLToPath(new URL(`../apps/hotel/${p}`, import.meta.url));
let tc: TestCluster;
let sigmaPort = 0;
let plain: HttpDeployment;
/** The sigma deployment's procs: its services in app.services order, then the frontend. */
let pids: string[] = [];

test.before(async () => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 8000, memMb: 16384 }, programs: { 'hotel-service': dist('sigma-service.js'), 'hotel-frontend': dist('sigma-frontend.js') } }, ['default']);
  pids = await deploySigmaApp(tc.client, app, { service: 'hotel-service', frontend: 'hotel-frontend' }, 'default');
  sigmaPort = await waitFor(async () => tc.cluster.gatewayPorts.get('node-1') ?? 0, (p) => p > 0, WAIT_MS);
  await waitFor(() => http(sigmaPort, 'POST', '/user?username=Cornell_0&password=0000000000'), (a) => a.status === 200, WAIT_MS);
  plain = await startHttpApp(app, dist('app.js'));
});
test.after.always(async () => {
  await plain?.stop();
  await tc?.stop();
});

const HERE = 'lat=37.7867&lon=-122.4112';
const DATES = 'inDate=2015-04-09&outDate=2015-04-10';
const AUTH = 'username=Cornell_1&password=1111111111';

async function session(port: number): Promise<Array<{ status: number; body: unknown }>> {
  const go = async (method: string, path: string) => {
    const a = await http(port, method, path);
    return { status: a.status, body: JSON.parse(a.body) as unknown };
  };
  return [
    await go('GET', `/hotels?${DATES}&${HERE}`),
    await go('GET', `/recommendations?require=dis&${HERE}`),
    await go('GET', `/recommendations?require=rate&${HERE}`),
    await go('GET', `/recommendations?require=price&${HERE}`),
    await go('POST', `/user?${AUTH}`),
    await go('POST', '/user?username=Cornell_1&password=111'),
    await go('POST', `/reservation?${DATES}&${HERE}&hotelId=1&customerName=Cornell_1&${AUTH}&number=150`),
    await go('POST', `/reservation?${DATES}&${HERE}&hotelId=1&customerName=Cornell_1&${AUTH}&number=51`),
    await go('POST', `/reservation?inDate=2015-04-10&outDate=2015-04-11&${HERE}&hotelId=1&customerName=Cornell_1&${AUTH}&number=51`),
    await go('POST', `/reservation?${DATES}&hotelId=1&customerName=x&username=Cornell_1&password=x&number=1`),
    await go('GET', `/recommendations?require=nearest&${HERE}`),
  ];
}

const names = (v: unknown): string[] => (v as { features: Array<{ id: string; properties: { name: string } }> }).features.map((f) => `${f.id} ${f.properties.name}`);

test.serial('hotel - search, recommend, login and reserve answer the same in both deployments, and right', async (t) => {
  const [onSigma, onHttp] = [await session(sigmaPort), await session(plain.port)];
  t.deepEqual(onSigma, onHttp);
  const [search, dis, rate, price, login, badLogin, reserve, full, nextNight, badUser, badRequire] = onSigma as Array<{ status: number; body: unknown }>;
  t.is(search!.status, 200);
  t.true(names(search!.body).includes('1 Clift Hotel'), JSON.stringify(names(search!.body)));
  t.deepEqual(names(dis!.body), ['1 Clift Hotel'], 'the nearest hotel to the point is the one on it');
  t.deepEqual(names(rate!.body).map((n) => n.split(' ')[0]), ['9', '24', '39', '54', '69'], 'the highest bookable rate (232)');
  t.deepEqual(names(price!.body).map((n) => n.split(' ')[0]), ['1', '3', '15', '30', '45', '60', '75'], 'the lowest price (123.17)');
  t.deepEqual([login!.body, badLogin!.body], [{ message: 'Login successfully!' }, { message: 'Login failed. Please check your username and password. ' }]);
  t.deepEqual(reserve!.body, { message: 'Reserve successfully!' });
  t.deepEqual(full!.body, { message: 'Failed. Already reserved. ' }, '150 + 51 rooms is past the 200 of hotel 1 that night');
  t.deepEqual(nextNight!.body, { message: 'Reserve successfully!' }, 'another night has its own capacity');
  t.deepEqual(badUser!.body, { message: 'Please check your username and password. ' });
  t.is(badRequire!.status, 400);
});

test.serial('hotel - a reservation survives a restart of the reservation service: the capacity it took stays taken', async (t) => {
  const reserve = async (rooms: number) => {
    const a = await http(sigmaPort, 'POST', `/reservation?inDate=2015-05-01&outDate=2015-05-03&${HERE}&hotelId=2&customerName=Cornell_1&${AUTH}&number=${rooms}`);
    return { status: a.status, body: JSON.parse(a.body) as unknown };
  };
  t.deepEqual((await reserve(150)).body, { message: 'Reserve successfully!' }, 'hotel 2 has 200 rooms a night');
  const reservation = pids[app.services.indexOf('reservation')]!;
  const fresh = await restartService(tc, reservation, 'hotel-service', 'reservation', { args: ['reservation'], restart: 'on-failure' });
  t.not(fresh, reservation);
  // The frontend may still hold the old proc's endpoint for a moment: ask until the new one answers.
  const full = await waitFor(() => reserve(51), (a) => a.status === 200, WAIT_MS);
  t.deepEqual(full.body, { message: 'Failed. Already reserved. ' }, 'the 150 rooms taken before the restart are still taken');
  t.deepEqual((await reserve(50)).body, { message: 'Reserve successfully!' }, 'and the 50 left can be booked');
  t.deepEqual((await reserve(1)).body, { message: 'Failed. Already reserved. ' });
});
