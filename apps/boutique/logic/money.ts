/** Money as Online Boutique's protos carry it: whole units and nanos (10^-9) of a currency. */
export interface Money {
  currencyCode: string;
  units: number;
  nanos: number;
}

const NANOS = 1_000_000_000;

export const money = (currencyCode: string, amount: number): Money => {
  const units = Math.trunc(amount);
  return { currencyCode, units, nanos: Math.round((amount - units) * NANOS) };
};

export const toNumber = (m: Money): number => m.units + m.nanos / NANOS;

/** Keeps nanos in (-1e9, 1e9) with the sign of units, as the original `_carry` does. */
function carry(units: number, nanos: number): { units: number; nanos: number } {
  const f = units + nanos / NANOS;
  const u = Math.trunc(f);
  return { units: u, nanos: Math.round((f - u) * NANOS) };
}

export function sum(a: Money, b: Money): Money {
  if (a.currencyCode !== b.currencyCode) throw new Error(`cannot add ${a.currencyCode} to ${b.currencyCode}`);
  return { currencyCode: a.currencyCode, ...carry(a.units + b.units, a.nanos + b.nanos) };
}

export function times(m: Money, n: number): Money {
  return { currencyCode: m.currencyCode, ...carry(m.units * n, m.nanos * n) };
}

export const zero = (currencyCode: string): Money => ({ currencyCode, units: 0, nanos: 0 });

/** "USD 19.99": what the frontend shows. */
export function format(m: Money): string {
  const cents = Math.round(toNumber(m) * 100);
  return `${m.currencyCode} ${(cents / 100).toFixed(2)}`;
}
