/**
 * Online Boutique's Locust mix (home 1, set currency 2, browse product 10, add to cart 2, view cart 3,
 * checkout 1), run by apps/common/loadgen.ts: `node loadgen.js <port> <connections> <durationS>
 * [ratePerS]` (closed loop without a rate, open loop with one). Each visitor has its own session cookie
 * and cycles through a fixed interleaving of the 19 weighted tasks.
 */
import { randomUUID } from 'node:crypto';
import { main, type Mix, type MixRequest } from '../common/loadgen.js';

const PRODUCTS = ['0PUK6V6EV0', '1YMWWN1N4O', '2ZYFJ3GM2N', '66VCHSJNUP', '6E92ZMYYFZ', '9SIQT8TOJO', 'L9ECAV7KIM', 'LS4PSXUNUM', 'OLJCESPC7Z'];
const CURRENCIES = ['EUR', 'USD', 'JPY', 'CAD', 'GBP', 'TRY'];
const FORM = 'application/x-www-form-urlencoded';
const CHECKOUT = new URLSearchParams({ email: 'someone@example.com', street_address: '1600 Amphitheatre Parkway', zip_code: '94043', city: 'Mountain View', state: 'CA', country: 'United States', credit_card_number: '4432-8015-6152-0454', credit_card_expiration_month: '1', credit_card_expiration_year: '2039', credit_card_cvv: '672' }).toString();

type Task = 'home' | 'currency' | 'browse' | 'add' | 'cart' | 'checkout';
/** 19 tasks in the Locust weights, interleaved so that a cart has items before a checkout. */
const ORDER: Task[] = ['home', 'browse', 'browse', 'currency', 'browse', 'add', 'browse', 'cart', 'browse', 'browse', 'currency', 'browse', 'cart', 'add', 'browse', 'browse', 'cart', 'checkout', 'browse'];

interface Ctx { session?: string; n?: number }
const pick = <T>(xs: readonly T[], n: number): T => xs[n % xs.length]!;

function request(task: Task, ctx: Ctx): MixRequest {
  ctx.session ??= randomUUID();
  const n = (ctx.n = (ctx.n ?? 0) + 1);
  const headers = { cookie: `shop_session-id=${ctx.session}` };
  switch (task) {
    case 'home':
      return { method: 'GET', path: '/', headers };
    case 'browse':
      return { method: 'GET', path: `/product/${pick(PRODUCTS, n * 7)}`, headers };
    case 'currency':
      return { method: 'POST', path: '/setCurrency', headers: { ...headers, 'content-type': FORM }, body: `currency_code=${pick(CURRENCIES, n)}` };
    case 'add':
      return { method: 'POST', path: '/cart', headers: { ...headers, 'content-type': FORM }, body: `product_id=${pick(PRODUCTS, n * 5)}&quantity=${1 + (n % 10)}` };
    case 'cart':
      return { method: 'GET', path: '/cart', headers };
    case 'checkout':
      return { method: 'POST', path: '/cart/checkout', headers: { ...headers, 'content-type': FORM }, body: CHECKOUT };
  }
}

export const boutiqueMix: Mix<Task, Ctx> = { tasks: ORDER, request };

await main(boutiqueMix);
