import { inMemory } from '../../common/state.js';
import { cartState } from './cart.js';
import { catalog, type Product } from './catalog.js';
import { currency } from './currency.js';
import { format, sum, times, zero, type Money } from './money.js';
import { ads, email, idOf, payment, recommendation, shipping, type Address, type CartItem, type CreditCard } from './small.js';

/** The services of Online Boutique and their call graph; only the wiring (src of `Rpc`) differs between deployments. */
export const SERVICE_NAMES = ['catalog', 'currency', 'cart', 'shipping', 'payment', 'email', 'checkout', 'recommendation', 'ad'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** One call to another service: JSON arguments in, a JSON result out; a failure is an Error with its message. */
export type Rpc = (service: ServiceName, method: string, args: unknown[]) => Promise<unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handlers = Record<string, (args: any, rpc: Rpc) => unknown>;

export class UnknownMethodError extends Error {
  readonly type = 'unknown-method';
}

export interface PlaceOrderRequest {
  userId: string;
  userCurrency: string;
  address: Address;
  email: string;
  creditCard: CreditCard;
  nowMs: number;
}

export interface OrderResult {
  orderId: string;
  shippingTrackingId: string;
  shippingCost: Money;
  shippingAddress: Address;
  items: Array<{ item: CartItem; cost: Money }>;
  total: Money;
}

/** checkoutservice: the original's PlaceOrder, call for call. */
async function placeOrder(req: PlaceOrderRequest, rpc: Rpc): Promise<OrderResult> {
  const cart = (await rpc('cart', 'getCart', [req.userId])) as { items: CartItem[] };
  // The shipping quote needs only the cart: asked for beside the items' prices, not after them.
  const quote = rpc('shipping', 'getQuote', [req.address, cart.items]) as Promise<Money>;
  quote.catch(() => {}); // awaited below; if an item's price fails first, its failure is the order's
  const items = await Promise.all(
    cart.items.map(async (item) => {
      const p = (await rpc('catalog', 'getProduct', [item.productId])) as Product;
      const cost = (await rpc('currency', 'convert', [p.priceUsd, req.userCurrency])) as Money;
      return { item, cost };
    }),
  );
  const shippingCost = (await rpc('currency', 'convert', [await quote, req.userCurrency])) as Money;
  let total = sum(zero(req.userCurrency), shippingCost);
  for (const i of items) total = sum(total, times(i.cost, i.item.quantity));
  await rpc('payment', 'charge', [total, req.creditCard, req.nowMs]);
  const shippingTrackingId = (await rpc('shipping', 'shipOrder', [req.address, cart.items])) as string;
  await rpc('cart', 'emptyCart', [req.userId]);
  const order: OrderResult = { orderId: idOf('order', req.userId, cart.items, total), shippingTrackingId, shippingCost, shippingAddress: req.address, items, total };
  await rpc('email', 'sendOrderConfirmation', [req.email, order]);
  return order;
}

/** Each service's handlers; the cart's state is its own (one per process or proc: see cartState). */
export function handlersOf(name: ServiceName): Handlers {
  switch (name) {
    case 'catalog':
      return { listProducts: () => catalog.listProducts(), getProduct: ([id]: [string]) => catalog.getProduct(id), searchProducts: ([q]: [string]) => catalog.searchProducts(q) };
    case 'currency':
      return { getSupportedCurrencies: () => currency.getSupportedCurrencies(), convert: ([from, to]: [Money, string]) => currency.convert(from, to) };
    case 'cart':
      return inMemory(cartState) as Handlers; // the cart calls no other service: any Rpc will do
    case 'shipping':
      return { getQuote: ([, items]: [Address, CartItem[]]) => shipping.getQuote(items), shipOrder: ([address, items]: [Address, CartItem[]]) => shipping.shipOrder(address, items) };
    case 'payment':
      return { charge: ([amount, card, nowMs]: [Money, CreditCard, number]) => payment.charge(amount, card, nowMs) };
    case 'email':
      return { sendOrderConfirmation: ([to, order]: [string, OrderResult]) => email.sendOrderConfirmation(to, order) };
    case 'checkout':
      return { placeOrder: ([req]: [PlaceOrderRequest], rpc: Rpc) => placeOrder(req, rpc) };
    case 'recommendation':
      return { listRecommendations: ([, ids]: [string, string[]]) => recommendation.listRecommendations(ids) };
    case 'ad':
      return { getAds: ([keys]: [string[]]) => ads.getAds(keys) };
  }
}

export { format };
