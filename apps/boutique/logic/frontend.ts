import type { Product } from './catalog.js';
import { format, sum, times, zero, type Money } from './money.js';
import type { Ad, CartItem } from './small.js';
import type { FrontAnswer, FrontRequest } from '../../common/app.js';
import type { OrderResult, Rpc } from './services.js';

export const SESSION_COOKIE = 'shop_session-id';
export const CURRENCY_COOKIE = 'shop_currency';
/** The frontend's whitelist (the original shows these of the supported ones). */
const WHITELIST = ['USD', 'EUR', 'CAD', 'JPY', 'GBP', 'TRY'];
const DEFAULT_CURRENCY = 'USD';
/** The address and card the original's Locust `checkout` task submits are form fields; this is the quote address of the cart page. */
const CART_QUOTE_ADDRESS = { streetAddress: '', city: '', state: '', country: '', zipCode: 0 };

/** The routes the original frontend answers (method, path), for the gateway's route list. */
export const FRONTEND_ROUTES: ReadonlyArray<[string, string]> = [
  ['GET', '/'],
  ['GET', '/product/:id'],
  ['GET', '/cart'],
  ['POST', '/cart'],
  ['POST', '/cart/empty'],
  ['POST', '/cart/checkout'],
  ['POST', '/setCurrency'],
  ['GET', '/logout'],
  ['GET', '/_healthz'],
];

export interface FrontDeps {
  rpc: Rpc;
  /** A fresh session id for a visitor without the cookie. */
  newSession: () => string;
  nowMs: () => number;
}

type Page = (req: FrontRequest, s: Session, d: FrontDeps) => Promise<FrontAnswer>;
interface Session {
  id: string;
  currency: string;
  fresh: boolean;
}

/** Online Boutique's frontend: the original's handlers, call for call, rendering a small HTML page. */
export async function handle(req: FrontRequest, d: FrontDeps): Promise<FrontAnswer> {
  const sid = req.cookies[SESSION_COOKIE];
  const s: Session = { id: sid ?? d.newSession(), currency: req.cookies[CURRENCY_COOKIE] ?? DEFAULT_CURRENCY, fresh: sid === undefined };
  const page = pageOf(req);
  let a: FrontAnswer;
  try {
    a = page === undefined ? html(404, 'Not found', `<p>no page ${esc(req.method)} ${esc(req.path)}</p>`) : await page(req, s, d);
  } catch (e) {
    a = html(500, 'Uh, oh!', `<p>Something has failed.</p><pre>${esc(e instanceof Error ? e.message : String(e))}</pre>`);
  }
  if (s.fresh) a.headers['set-cookie'] = `${SESSION_COOKIE}=${s.id}; Max-Age=172800; Path=/`;
  return a;
}

function pageOf(req: FrontRequest): Page | undefined {
  const m = req.method;
  if (m === 'GET' && req.path === '/') return home;
  if (m === 'GET' && /^\/product\/[^/]+$/.test(req.path)) return product;
  if (req.path === '/cart') return m === 'GET' ? viewCart : m === 'POST' ? addToCart : undefined;
  if (m === 'POST' && req.path === '/cart/empty') return emptyCart;
  if (m === 'POST' && req.path === '/cart/checkout') return checkout;
  if (m === 'POST' && req.path === '/setCurrency') return setCurrency;
  if (m === 'GET' && req.path === '/logout') return async () => ({ status: 302, headers: { location: '/', 'set-cookie': `${SESSION_COOKIE}=; Max-Age=0; Path=/` }, body: '' });
  if (m === 'GET' && req.path === '/_healthz') return async () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' });
  return undefined;
}

const currencies = async (d: FrontDeps): Promise<string[]> => ((await d.rpc('currency', 'getSupportedCurrencies', [])) as string[]).filter((c) => WHITELIST.includes(c));
const cartOf = async (d: FrontDeps, s: Session): Promise<CartItem[]> => ((await d.rpc('cart', 'getCart', [s.id])) as { items: CartItem[] }).items;
const convert = async (d: FrontDeps, m: Money, to: string): Promise<Money> => (await d.rpc('currency', 'convert', [m, to])) as Money;
const adOf = async (d: FrontDeps, keys: string[]): Promise<Ad[]> => (await d.rpc('ad', 'getAds', [keys])) as Ad[];

const home: Page = async (_req, s, d) => {
  const [cs, products, cart, ad] = await Promise.all([currencies(d), d.rpc('catalog', 'listProducts', []) as Promise<Product[]>, cartOf(d, s), adOf(d, [])]);
  const prices = await Promise.all(products.map((p) => convert(d, p.priceUsd, s.currency)));
  const list = products.map((p, i) => `<li><a href="/product/${p.id}">${esc(p.name)}</a> ${format(prices[i]!)}</li>`).join('');
  return html(200, 'Online Boutique', `${header(cs, s, cart)}<ul class="products">${list}</ul>${adHtml(ad)}`);
};

const product: Page = async (req, s, d) => {
  const id = decodeURIComponent(req.path.slice('/product/'.length));
  const p = (await d.rpc('catalog', 'getProduct', [id])) as Product;
  const [cs, cart, price, recs, ad] = await Promise.all([currencies(d), cartOf(d, s), convert(d, p.priceUsd, s.currency), d.rpc('recommendation', 'listRecommendations', [s.id, [id]]) as Promise<string[]>, adOf(d, p.categories)]);
  return html(200, p.name, `${header(cs, s, cart)}<h2>${esc(p.name)}</h2><p class="price">${format(price)}</p><p>${esc(p.description)}</p><form method="POST" action="/cart"><input type="hidden" name="product_id" value="${p.id}"></form>${recsHtml(recs)}${adHtml(ad)}`);
};

const viewCart: Page = async (_req, s, d) => {
  const [cs, cart] = await Promise.all([currencies(d), cartOf(d, s)]);
  const [recs, quoteUsd, lines] = await Promise.all([
    d.rpc('recommendation', 'listRecommendations', [s.id, cart.map((i) => i.productId)]) as Promise<string[]>,
    d.rpc('shipping', 'getQuote', [CART_QUOTE_ADDRESS, cart]) as Promise<Money>,
    Promise.all(cart.map(async (i) => ({ i, p: (await d.rpc('catalog', 'getProduct', [i.productId])) as Product }))),
  ]);
  // The shipping cost and every line's price at once (the original converts them one after another).
  const [shippingCost, ...prices] = await Promise.all([convert(d, quoteUsd, s.currency), ...lines.map(({ p }) => convert(d, p.priceUsd, s.currency))]);
  let total = sum(zero(s.currency), shippingCost!);
  const rows: string[] = [];
  for (const [k, { i, p }] of lines.entries()) {
    const price = prices[k]!;
    total = sum(total, times(price, i.quantity));
    rows.push(`<li>${esc(p.name)} x ${i.quantity}: ${format(times(price, i.quantity))}</li>`);
  }
  return html(200, 'Shopping Cart', `${header(cs, s, cart)}<ul class="cart">${rows.join('')}</ul><p>Shipping: ${format(shippingCost!)}</p><p class="total">Total: ${format(total)}</p>${recsHtml(recs)}`);
};

const addToCart: Page = async (req, s, d) => {
  const quantity = Number(req.form['quantity']);
  const id = req.form['product_id'] ?? '';
  if (!Number.isInteger(quantity) || quantity < 1 || id === '') return html(422, 'Invalid', '<p>invalid form input</p>');
  await d.rpc('catalog', 'getProduct', [id]);
  await d.rpc('cart', 'addItem', [s.id, { productId: id, quantity }]);
  return { status: 302, headers: { location: '/cart' }, body: '' };
};

const emptyCart: Page = async (_req, s, d) => {
  await d.rpc('cart', 'emptyCart', [s.id]);
  return { status: 302, headers: { location: '/' }, body: '' };
};

const checkout: Page = async (req, s, d) => {
  const f = req.form;
  const num = (k: string): number => Number(f[k]);
  // The recommendations do not depend on the order: asked for beside it, not after it.
  const [order, recs] = (await Promise.all([d.rpc('checkout', 'placeOrder', [
    {
      userId: s.id,
      userCurrency: s.currency,
      address: { streetAddress: f['street_address'] ?? '', city: f['city'] ?? '', state: f['state'] ?? '', country: f['country'] ?? '', zipCode: num('zip_code') },
      email: f['email'] ?? '',
      creditCard: { number: f['credit_card_number'] ?? '', cvv: num('credit_card_cvv'), expirationYear: num('credit_card_expiration_year'), expirationMonth: num('credit_card_expiration_month') },
      nowMs: d.nowMs(),
    },
  ]), d.rpc('recommendation', 'listRecommendations', [s.id, []])])) as [OrderResult, string[]];
  return html(200, 'Your order is complete!', `<p>Confirmation # ${order.orderId}</p><p>Tracking # ${order.shippingTrackingId}</p><p class="total">Total paid: ${format(order.total)}</p>${recsHtml(recs)}`);
};

const setCurrency: Page = async (req) => {
  const code = req.form['currency_code'] ?? '';
  return { status: 302, headers: { location: req.referer ?? '/', 'set-cookie': `${CURRENCY_COOKIE}=${encodeURIComponent(code)}; Max-Age=172800; Path=/` }, body: '' };
};

function header(cs: string[], s: Session, cart: CartItem[]): string {
  return `<header><select name="currency_code">${cs.map((c) => `<option${c === s.currency ? ' selected' : ''}>${c}</option>`).join('')}</select> <a href="/cart">Cart (${cart.reduce((n, i) => n + i.quantity, 0)})</a></header>`;
}
const recsHtml = (ids: string[]): string => `<section class="recommendations">${ids.map((id) => `<a href="/product/${id}">${id}</a>`).join(' ')}</section>`;
const adHtml = (ad: Ad[]): string => (ad.length === 0 ? '' : `<aside class="ad"><a href="${ad[0]!.redirectUrl}">${esc(ad[0]!.text)}</a></aside>`);
const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function html(status: number, title: string, body: string): FrontAnswer {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: `<!DOCTYPE html><html><head><title>${esc(title)}</title></head><body>${body}</body></html>` };
}

export { zero };
