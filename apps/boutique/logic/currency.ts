import type { Money } from './money.js';

/** Rates against EUR, from Online Boutique's currencyservice (currency_conversion.json). */
export const EUR_RATES: Readonly<Record<string, number>> = {
  EUR: 1.0, USD: 1.1305, JPY: 126.4, BGN: 1.9558, CZK: 25.592, DKK: 7.4609, GBP: 0.8597, HUF: 315.51, PLN: 4.2996, RON: 4.7463, SEK: 10.5375, CHF: 1.136, ISK: 136.8, NOK: 9.804, HRK: 7.421, RUB: 74.4208, TRY: 6.1247, AUD: 1.6072, BRL: 4.2682, CAD: 1.5128, CNY: 7.5857, HKD: 8.8743, IDR: 15999.4, ILS: 4.0875, INR: 79.432, KRW: 1275.05, MXN: 21.7999, MYR: 4.6289, NZD: 1.6679, PHP: 59.083, SGD: 1.5349, THB: 36.012, ZAR: 16.0583,
};

export class UnsupportedCurrencyError extends Error {
  readonly type = 'unsupported-currency';
  constructor(code: string) {
    super(`unsupported currency ${code}`);
  }
}

function carry(units: number, nanos: number): { units: number; nanos: number } {
  const fraction = 10 ** 9;
  nanos += (units % 1) * fraction;
  units = Math.floor(units) + Math.floor(nanos / fraction);
  nanos = nanos % fraction;
  return { units, nanos };
}

/** The original's algorithm: to euros (units and nanos divided by the rate, carried), then to the target. */
export const currency = {
  getSupportedCurrencies: (): string[] => Object.keys(EUR_RATES),
  convert: (from: Money, toCode: string): Money => {
    const fromRate = EUR_RATES[from.currencyCode];
    const toRate = EUR_RATES[toCode];
    if (fromRate === undefined) throw new UnsupportedCurrencyError(from.currencyCode);
    if (toRate === undefined) throw new UnsupportedCurrencyError(toCode);
    const euros = carry(from.units / fromRate, from.nanos / fromRate);
    euros.nanos = Math.round(euros.nanos);
    const result = carry(euros.units * toRate, euros.nanos * toRate);
    return { currencyCode: toCode, units: Math.floor(result.units), nanos: Math.floor(result.nanos) };
  },
};
