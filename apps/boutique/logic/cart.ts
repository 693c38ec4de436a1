import type { EventSourced } from '../../common/state.js';
import type { CartItem } from './small.js';

/** Carts by user (userKey), each with its items in the order they were first added. */
export type Carts = Record<string, CartItem[]>;
export type CartEvent = { t: 'add'; userId: string; item: CartItem } | { t: 'empty'; userId: string };

/** The original refuses quantities outside this (the frontend offers 1..10). */
const QUANTITY_MAX = 1000;
/** Users' keys in the record: prefixed, so that no user id (`__proto__`) names a property every object has. */
const userKey = (userId: string): string => `u:${userId}`;

function apply(carts: Carts, e: CartEvent): Carts {
  const k = userKey(e.userId);
  if (e.t === 'empty') {
    delete carts[k];
    return carts;
  }
  const items = (carts[k] ??= []);
  const have = items.find((i) => i.productId === e.item.productId);
  if (have === undefined) items.push({ productId: e.item.productId, quantity: e.item.quantity });
  else have.quantity += e.item.quantity;
  return carts;
}

/** cartservice: carts as events (added, emptied); journaled on sigma-ts, in memory as an HTTP microservice. */
export const cartState: EventSourced<Carts, CartEvent> = {
  initial: () => ({}),
  apply,
  handlers: (carts, persist) => ({
    addItem: async ([userId, item]: [string, CartItem]) => {
      if (typeof userId !== 'string' || typeof item?.productId !== 'string') throw new Error('addItem needs a user id and a product id');
      if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > QUANTITY_MAX) throw new Error(`invalid quantity ${item.quantity}`);
      await persist({ t: 'add', userId, item: { productId: item.productId, quantity: item.quantity } });
      return {};
    },
    getCart: ([userId]: [string]) => ({ userId, items: (carts()[userKey(userId)] ?? []).map((i) => ({ ...i })) }),
    emptyCart: async ([userId]: [string]) => {
      if (carts()[userKey(userId)] !== undefined) await persist({ t: 'empty', userId });
      return {};
    },
  }),
  queries: ['getCart'],
};
