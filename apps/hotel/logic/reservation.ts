import type { EventSourced } from '../../common/state.js';
import { capacityOf, PROFILES } from './data.js';

/** Rooms taken: hotel id -> night (YYYY-MM-DD) -> rooms. Only known hotels' ids are keys. */
export type Taken = Record<string, Record<string, number>>;
/** One reservation as it was made. */
export interface Booked {
  hotelId: string;
  nights: string[];
  rooms: number;
}

/** Nights from inDate (inclusive) to outDate (exclusive), as YYYY-MM-DD. */
export function nights(inDate: string, outDate: string): string[] {
  const out: string[] = [];
  const end = Date.parse(`${outDate}T00:00:00Z`);
  for (let t = Date.parse(`${inDate}T00:00:00Z`); t < end && out.length < 366; t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

function apply(taken: Taken, e: Booked): Taken {
  const byNight = (taken[e.hotelId] ??= {});
  for (const n of e.nights) byNight[n] = (byNight[n] ?? 0) + e.rooms;
  return taken;
}

/** reservation: capacity per hotel and night, consumed by reservations (events); journaled on sigma-ts. */
export const reservationState: EventSourced<Taken, Booked> = {
  initial: () => ({}),
  apply,
  handlers: (taken, persist) => {
    const available = (hotelId: string, ns: string[], rooms: number): boolean => ns.every((n) => (taken()[hotelId]?.[n] ?? 0) + rooms <= capacityOf(hotelId));
    return {
      checkAvailability: ([, hotelIds, inDate, outDate, rooms]: [string, string[], string, string, number]) => hotelIds.filter((h) => PROFILES.has(h) && available(h, nights(inDate, outDate), rooms)),
      makeReservation: async ([, hotelIds, inDate, outDate, rooms]: [string, string[], string, string, number]) => {
        const h = hotelIds[0];
        const ns = nights(inDate, outDate);
        if (h === undefined || !PROFILES.has(h) || !Number.isInteger(rooms) || rooms < 1 || ns.length === 0 || !available(h, ns, rooms)) return [];
        await persist({ hotelId: h, nights: ns, rooms });
        return [h];
      },
    };
  },
  queries: ['checkAvailability'],
};
