import { createHash } from 'node:crypto';
import { PRODUCTS } from './catalog.js';
import { money, type Money } from './money.js';

export interface Address {
  streetAddress: string;
  city: string;
  state: string;
  country: string;
  zipCode: number;
}

export interface CartItem {
  productId: string;
  quantity: number;
}

export interface CreditCard {
  number: string;
  cvv: number;
  expirationYear: number;
  expirationMonth: number;
}

/** Ids that the same inputs always give (both deployments answer alike; the originals use random UUIDs). */
export const idOf = (...parts: unknown[]): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

/** shippingservice: a quote by item count (none: nothing to ship), tracking ids from the address. */
export const shipping = {
  getQuote: (items: CartItem[]): Money => money('USD', items.reduce((n, i) => n + i.quantity, 0) === 0 ? 0 : 8.99),
  shipOrder: (address: Address, items: CartItem[]): string => idOf('ship', address, items),
};

export class PaymentError extends Error {
  readonly type = 'payment';
}

/** Luhn's check over the digits of a card number. */
export function luhn(number: string): boolean {
  const digits = number.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits)) return false;
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    total += d;
  }
  return total % 10 === 0;
}

/** paymentservice: valid Visa or MasterCard numbers that have not expired are charged. */
export const payment = {
  charge: (amount: Money, card: CreditCard, nowMs: number): string => {
    const digits = card.number.replace(/[\s-]/g, '');
    if (!luhn(digits)) throw new PaymentError('Credit card info is invalid');
    const type = digits.startsWith('4') ? 'visa' : /^5[1-5]/.test(digits) ? 'mastercard' : undefined;
    if (type === undefined) throw new PaymentError(`Sorry, we cannot process ${digits.slice(0, 4)}... credit cards. Only VISA or MasterCard is accepted.`);
    const now = new Date(nowMs);
    if (card.expirationYear * 12 + card.expirationMonth < now.getUTCFullYear() * 12 + now.getUTCMonth() + 1) throw new PaymentError(`Your credit card (ending ${digits.slice(-4)}) expired on ${card.expirationMonth}/${card.expirationYear}`);
    return idOf('charge', amount, digits.slice(-4));
  },
};

/** emailservice: the confirmation, rendered (sending is not simulated). */
export const email = {
  sendOrderConfirmation: (to: string, order: { orderId: string; items: unknown[] }): string => `To: ${to}\nSubject: Your Confirmation Email\n\nOrder ${order.orderId}: ${order.items.length} items.`,
};

/** recommendationservice: up to five other products (the original shuffles; we keep catalog order, so both deployments agree). */
export const recommendation = {
  listRecommendations: (productIds: string[]): string[] => PRODUCTS.map((p) => p.id).filter((id) => !productIds.includes(id)).slice(0, 5),
};

export interface Ad {
  redirectUrl: string;
  text: string;
}

const ADS: Record<string, Ad[]> = {
  clothing: [{ redirectUrl: '/product/66VCHSJNUP', text: 'Tank top for sale. 20% off.' }],
  accessories: [{ redirectUrl: '/product/1YMWWN1N4O', text: 'Watch for sale. Buy one, get second kit for free' }],
  footwear: [{ redirectUrl: '/product/L9ECAV7KIM', text: 'Loafers for sale. Buy one, get second one for free' }],
  hair: [{ redirectUrl: '/product/2ZYFJ3GM2N', text: 'Hairdryer for sale. 50% off.' }],
  decor: [{ redirectUrl: '/product/0PUK6V6EV0', text: 'Candle holder for sale. 30% off.' }],
  kitchen: [
    { redirectUrl: '/product/9SIQT8TOJO', text: 'Bamboo glass jar for sale. 10% off.' },
    { redirectUrl: '/product/6E92ZMYYFZ', text: 'Mug for sale. Buy two, get third one for free' },
  ],
};

/** adservice: ads of the context's categories, else one picked by the context (deterministic). */
export const ads = {
  getAds: (contextKeys: string[]): Ad[] => {
    const found = contextKeys.flatMap((k) => ADS[k] ?? []);
    if (found.length > 0) return found;
    const all = Object.values(ADS).flat();
    return [all[contextKeys.join(',').length % all.length]!];
  },
};
