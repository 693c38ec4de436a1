import test from 'ava';
import { fileURLToPath } from 'node:url';
import { startHttpBoutique, type HttpBoutique } from '../apps/boutique/http/deploy.js';
import { deploySigmaBoutique } from '../apps/boutique/sigma-deploy.js';
import { SERVICE_NAMES } from '../apps/boutique/logic/services.js';
import { restartService, testCluster, waitFor, type TestCluster } from './helpers/cluster.js';
import { http, type HttpAnswer } from './helpers/http.js';

/**
 * Online Boutique, both deployments of the same service code: on sigma-ts (gateway, procs, data path)
 * and as plain HTTP microservices. The same requests get the same answers, and the answers are right.
 */
const WAIT_MS = 30_000;
const dist = (p: string): string => fileURLToPath(new URL(`../apps/boutique/${p}`, import.meta.url));
let tc: TestCluster;
let sigmaPort = 0;
let plain: HttpBoutique;
/** The sigma deployment's procs: its services in SERVICE_NAMES order, then the frontend. */
let pids: string[] = [];

test.before(async () => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 8000, memMb: 16384 }, programs: { 'boutique-service': dist('sigma-service.js'), 'boutique-frontend': dist('sigma-frontend.js') }, gateway: { port: 0 } }, ['default']);
  pids = await deploySigmaBoutique(tc.client);
  sigmaPort = await waitFor(async () => tc.cluster.gatewayPorts.get('node-1') ?? 0, (p) => p > 0, WAIT_MS);
  await waitFor(() => http(sigmaPort, 'GET', '/', undefined, { headers: { cookie: 'shop_session-id=warmup' } }), (a) => a.status === 200, WAIT_MS);
  plain = await startHttpBoutique();
});
test.after.always(async () => {
  await plain?.stop();
  await tc?.stop();
});

const form = (f: Record<string, string>): string => new URLSearchParams(f).toString();
const CARD = { credit_card_number: '4432-8015-6152-0454', credit_card_expiration_month: '1', credit_card_expiration_year: '2039', credit_card_cvv: '672' };
const ADDRESS = { email: 'someone@example.com', street_address: '1600 Amphitheatre Parkway', zip_code: '94043', city: 'Mountain View', state: 'CA', country: 'United States' };

/** One visitor's session, the Locust tasks in order, against one deployment. */
async function visit(port: number, session: string): Promise<Array<Pick<HttpAnswer, 'status' | 'body'> & { location?: string }>> {
  let cookie = `shop_session-id=${session}`;
  const go = async (method: string, path: string, body?: Record<string, string>) => {
    const a = await http(port, method, path, body === undefined ? undefined : form(body), { headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) } });
    const set = a.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : []) if (c.startsWith('shop_currency=')) cookie += `; ${c.split(';')[0]}`;
    return { status: a.status, body: a.body, ...(typeof a.headers['location'] === 'string' ? { location: a.headers['location'] } : {}) };
  };
  return [
    await go('GET', '/'),
    await go('GET', '/product/OLJCESPC7Z'),
    await go('POST', '/setCurrency', { currency_code: 'EUR' }),
    await go('GET', '/product/66VCHSJNUP'),
    await go('POST', '/cart', { product_id: '66VCHSJNUP', quantity: '2' }),
    await go('POST', '/cart', { product_id: '9SIQT8TOJO', quantity: '1' }),
    await go('GET', '/cart'),
    await go('POST', '/cart/checkout', { ...ADDRESS, ...CARD, credit_card_number: '4432-8015-6152-0455' }),
    await go('POST', '/cart/checkout', { ...ADDRESS, ...CARD }),
    await go('GET', '/cart'),
    await go('GET', '/product/NOSUCHITEM'),
    await go('GET', '/nowhere'),
  ];
}

test.serial('boutique - every page answers the same in both deployments, and the answers are right', async (t) => {
  const [onSigma, onHttp] = [await visit(sigmaPort, 'alice'), await visit(plain.port, 'alice')];
  // An unknown URL is the gateway's 404 on sigma-ts (no route), the frontend's on HTTP: the statuses agree.
  t.deepEqual(onSigma.slice(0, -1), onHttp.slice(0, -1));
  t.is(onSigma.at(-1)!.status, onHttp.at(-1)!.status);
  const [home, sunglasses, setCur, tank, add1, add2, cart, badCard, order, emptied, missing, nowhere] = onSigma as [ReturnType<typeof visit> extends Promise<Array<infer A>> ? A : never, ...Array<{ status: number; body: string; location?: string }>];
  t.is(home.status, 200);
  t.is((home.body.match(/<li><a href="\/product\//g) ?? []).length, 9, 'the nine products');
  t.regex(home.body, /Sunglasses<\/a> USD 19\.99/);
  t.regex(sunglasses!.body, /<p class="price">USD 19\.99<\/p>/);
  t.regex(sunglasses!.body, /Watch for sale/, 'the ad of its category');
  t.deepEqual([setCur!.status, setCur!.location], [302, '/']);
  t.regex(tank!.body, /<p class="price">EUR 16\.80<\/p>/, '18.99 USD through the EUR rate 1.1305');
  t.deepEqual([add1!.status, add2!.status, add1!.location], [302, 302, '/cart']);
  t.regex(cart!.body, /Tank Top x 2: EUR 33\.60/);
  t.regex(cart!.body, /Shipping: EUR 7\.95/, 'a quote of 8.99 USD for a cart that is not empty');
  t.regex(cart!.body, /Total: EUR 46\.40/);
  t.is(badCard!.status, 500);
  t.regex(badCard!.body, /Credit card info is invalid/, 'Luhn');
  t.is(order!.status, 200);
  t.regex(order!.body, /Confirmation # [0-9a-f-]{36}/);
  t.regex(order!.body, /Total paid: EUR 46\.40/);
  t.regex(emptied!.body, /Cart \(0\)/, 'checkout emptied the cart');
  t.is(missing!.status, 500);
  t.is(nowhere!.status, 404);
});

test.serial('boutique - a cart survives a restart of the cart service (its events are in the realm journal)', async (t) => {
  const cookie = 'shop_session-id=carol';
  const add = (product_id: string, quantity: string) => http(sigmaPort, 'POST', '/cart', form({ product_id, quantity }), { headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } });
  t.is((await add('66VCHSJNUP', '3')).status, 302);
  t.is((await add('OLJCESPC7Z', '1')).status, 302);
  const before = await http(sigmaPort, 'GET', '/cart', undefined, { headers: { cookie } });
  t.regex(before.body, /Cart \(4\)/);
  const cart = pids[SERVICE_NAMES.indexOf('cart')]!;
  const fresh = await restartService(tc, cart, 'boutique-service', 'cart', { args: ['cart'], restart: 'on-failure' });
  t.not(fresh, cart);
  // The frontend may still hold the old proc's endpoint for a moment: read until the new one answers.
  const after = await waitFor(() => http(sigmaPort, 'GET', '/cart', undefined, { headers: { cookie } }), (a) => a.status === 200, WAIT_MS);
  t.is(after.body, before.body, 'the same cart, item for item, after the restart');
  t.regex(after.body, /Tank Top x 3/);
  // And the new proc goes on from the recovered cart.
  t.is((await add('66VCHSJNUP', '1')).status, 302);
  t.regex((await http(sigmaPort, 'GET', '/cart', undefined, { headers: { cookie } })).body, /Tank Top x 4/);
});
