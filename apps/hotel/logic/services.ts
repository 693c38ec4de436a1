import type { Handlers, Rpc } from '../../common/app.js';
import { inMemory } from '../../common/state.js';
import { POINTS, PROFILES, RATE_PLANS, sha256, USERS, type Profile, type RatePlan } from './data.js';
import { reservationState } from './reservation.js';

/** In start order: what a service calls is up before it. */
export const HOTEL_SERVICES = ['cache', 'geo', 'rate', 'profile', 'user', 'reservation', 'recommendation', 'search'] as const;

/** geo's search radius, km, and most results (DeathStarBench's maxSearchRadius, maxSearchResults). */
const SEARCH_RADIUS_KM = 10;
const SEARCH_RESULTS_MAX = 5;
const EARTH_RADIUS_KM = 6371;
const CACHE_ENTRIES_MAX = 10_000;

export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(a));
}

/**
 * Cached through the cache service, as DeathStarBench puts memcached in front of profile and rate: one
 * getMulti for all the keys (its services call memcached's GetMulti), then one setMulti for the misses.
 */
async function cachedAll<T>(rpc: Rpc, prefix: string, ids: readonly string[], load: (id: string) => T): Promise<T[]> {
  if (ids.length === 0) return [];
  const hits = (await rpc('cache', 'getMulti', [ids.map((id) => `${prefix}:${id}`)])) as Array<T | null>;
  const missed: Array<[string, T]> = [];
  const out = ids.map((id, i) => {
    const hit = hits[i];
    if (hit !== null && hit !== undefined) return hit;
    const v = load(id);
    missed.push([`${prefix}:${id}`, v]);
    return v;
  });
  if (missed.length > 0) await rpc('cache', 'setMulti', [missed]);
  return out;
}

function cacheHandlers(): Handlers {
  const m = new Map<string, unknown>();
  const set = (key: string, value: unknown): void => {
    if (m.size >= CACHE_ENTRIES_MAX) m.clear();
    m.set(key, value);
  };
  return {
    get: ([key]: [string]) => m.get(key) ?? null,
    set: ([key, value]: [string, unknown]) => (set(key, value), true),
    getMulti: ([keys]: [string[]]) => keys.map((k) => m.get(k) ?? null),
    setMulti: ([entries]: [Array<[string, unknown]>]) => {
      for (const [k, v] of entries) set(k, v);
      return true;
    },
  };
}

export function hotelHandlers(name: string): Handlers {
  switch (name) {
    case 'cache':
      return cacheHandlers();
    case 'geo':
      return {
        nearby: ([lat, lon]: [number, number]) =>
          POINTS.map((p) => ({ id: p.hotelId, d: distanceKm(lat, lon, p.lat, p.lon) }))
            .filter((x) => x.d <= SEARCH_RADIUS_KM)
            .sort((a, b) => a.d - b.d || Number(a.id) - Number(b.id))
            .slice(0, SEARCH_RESULTS_MAX)
            .map((x) => x.id),
      };
    case 'rate':
      return {
        getRates: async ([hotelIds]: [string[], string, string], rpc: Rpc) => {
          const plans = (await cachedAll(rpc, 'rate', hotelIds, (id) => RATE_PLANS.filter((r) => r.hotelId === id))).flat();
          return plans.sort((a, b) => b.roomType.totalRate - a.roomType.totalRate || Number(a.hotelId) - Number(b.hotelId));
        },
      };
    case 'profile':
      return { getProfiles: ([hotelIds]: [string[]], rpc: Rpc) => cachedAll(rpc, 'profile', hotelIds.filter((id) => PROFILES.has(id)), (id) => PROFILES.get(id)!) };
    case 'user':
      return { checkUser: ([username, password]: [string, string]) => USERS.get(username) === sha256(password) };
    case 'reservation':
      return inMemory(reservationState);
    case 'recommendation':
      return {
        getRecommendations: ([require, lat, lon]: [string, number, number]) => {
          const plan = (id: string): RatePlan | undefined => RATE_PLANS.find((r) => r.hotelId === id);
          const scored = POINTS.map((p) => ({ id: p.hotelId, d: distanceKm(lat, lon, p.lat, p.lon), rate: plan(p.hotelId)?.roomType.bookableRate ?? 0, price: plan(p.hotelId)?.roomType.totalRateInclusive ?? Infinity }));
          const best = (f: (x: (typeof scored)[number]) => number, want: 'min' | 'max'): string[] => {
            const v = want === 'min' ? Math.min(...scored.map(f)) : Math.max(...scored.map(f));
            return scored.filter((x) => f(x) === v).map((x) => x.id);
          };
          if (require === 'dis') return best((x) => x.d, 'min');
          if (require === 'rate') return best((x) => x.rate, 'max');
          if (require === 'price') return best((x) => x.price, 'min');
          throw new Error(`require must be dis, rate or price, got ${require}`);
        },
      };
    case 'search':
      return {
        nearby: async ([lat, lon, inDate, outDate]: [number, number, string, string], rpc: Rpc) => {
          const ids = (await rpc('geo', 'nearby', [lat, lon])) as string[];
          const plans = (await rpc('rate', 'getRates', [ids, inDate, outDate])) as RatePlan[];
          return plans.map((p) => p.hotelId);
        },
      };
  }
  throw new Error(`no hotel service ${name}`);
}

export type { Profile };
