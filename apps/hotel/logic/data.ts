import { createHash } from 'node:crypto';

/**
 * DeathStarBench hotelReservation's data set: hotels 1-6 as its JSON files give them, 7-80 generated
 * as its services' db.go do (around (37.7867, -122.4112)); users Cornell_0..Cornell_500 whose password
 * is the id's digits repeated ten times, stored as SHA-256.
 */
export const HOTELS_MAX = 80;

export interface Point { hotelId: string; lat: number; lon: number }
export interface Address { streetNumber: string; streetName: string; city: string; state: string; country: string; postalCode: string; lat: number; lon: number }
export interface Profile { id: string; name: string; phoneNumber: string; description: string; address: Address }
export interface RoomType { bookableRate: number; totalRate: number; totalRateInclusive: number; code: string; currency?: string; roomDescription: string }
export interface RatePlan { hotelId: string; code: string; inDate: string; outDate: string; roomType: RoomType }

const FIRST: Array<[string, string, string, string, number, number]> = [
  ['Clift Hotel', '(415) 775-4700', '495', 'Geary St', 37.7867, -122.4112],
  ['W San Francisco', '(415) 777-5300', '181', '3rd St', 37.7854, -122.4005],
  ['Hotel Zetta', '(415) 543-8555', '55', '5th St', 37.7834, -122.4071],
  ['Hotel Vitale', '(415) 278-3700', '8', 'Mission St', 37.7936, -122.393],
  ['Phoenix Hotel', '(415) 776-1380', '601', 'Eddy St', 37.7831, -122.4181],
  ['St. Regis San Francisco', '(415) 284-4000', '125', '3rd St', 37.7863, -122.4015],
];
const POSTAL = ['94102', '94103', '94103', '94105', '94109', '94109'];
const ST_REGIS = 'St. Regis Museum Tower is a 42-story, 484 ft skyscraper in the South of Market district of San Francisco, California, adjacent to Yerba Buena Gardens, Moscone Center, PacBell Building and the San Francisco Museum of Modern Art.';

export const POINTS: readonly Point[] = Array.from({ length: HOTELS_MAX }, (_, k) => {
  const i = k + 1;
  if (i <= 6) return { hotelId: String(i), lat: FIRST[k]![4], lon: FIRST[k]![5] };
  return { hotelId: String(i), lat: 37.7835 + (i / 500) * 3, lon: -122.41 + (i / 500) * 4 };
});

export const PROFILES: ReadonlyMap<string, Profile> = new Map(
  POINTS.map((p, k) => {
    const i = k + 1;
    const f = i <= 6 ? FIRST[k]! : undefined;
    const profile: Profile = {
      id: p.hotelId,
      name: f?.[0] ?? 'St. Regis San Francisco',
      phoneNumber: f?.[1] ?? `(415) 284-40${i}`,
      description: f === undefined ? ST_REGIS : `${f[0]}, ${f[2]} ${f[3]}, San Francisco.`,
      address: { streetNumber: f?.[2] ?? '125', streetName: f?.[3] ?? '3rd St', city: 'San Francisco', state: 'CA', country: 'United States', postalCode: POSTAL[k] ?? '94109', lat: p.lat, lon: p.lon },
    };
    return [p.hotelId, profile];
  }),
);

const king = (rate: number, inclusive: number): RoomType => ({ bookableRate: rate, totalRate: rate, totalRateInclusive: inclusive, code: 'KNG', roomDescription: 'King sized bed' });

/** Rate plans: hotels 1-3 from inventory.json, then every third hotel from 7 on, priced by its number. */
export const RATE_PLANS: readonly RatePlan[] = [
  { hotelId: '1', code: 'RACK', inDate: '2015-04-09', outDate: '2015-04-10', roomType: king(109, 123.17) },
  { hotelId: '2', code: 'RACK', inDate: '2015-04-09', outDate: '2015-04-10', roomType: { bookableRate: 139, totalRate: 139, totalRateInclusive: 153.09, code: 'QN', roomDescription: 'Queen sized bed' } },
  { hotelId: '3', code: 'RACK', inDate: '2015-04-09', outDate: '2015-04-10', roomType: king(109, 123.17) },
  ...Array.from({ length: HOTELS_MAX - 6 }, (_, k) => k + 7)
    .filter((i) => i % 3 === 0)
    .map((i) => {
      const [rate, inc] = i % 5 === 1 ? [120, 140] : i % 5 === 2 ? [124, 144] : i % 5 === 3 ? [132, 158] : i % 5 === 4 ? [232, 258] : [109, 123.17];
      return { hotelId: String(i), code: 'RACK', inDate: '2015-04-09', outDate: `2015-04-${i % 2 === 0 ? '17' : '24'}`, roomType: king(rate!, inc!) };
    }),
];

/** Rooms per hotel and night. */
export const capacityOf = (hotelId: string): number => {
  const i = Number(hotelId);
  return i <= 6 ? 200 : i % 3 === 1 ? 300 : i % 3 === 2 ? 250 : 200;
};

export const USERS_MAX = 500;
export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
export const USERS: ReadonlyMap<string, string> = new Map(Array.from({ length: USERS_MAX + 1 }, (_, i) => [`Cornell_${i}`, sha256(String(i).repeat(10))]));
