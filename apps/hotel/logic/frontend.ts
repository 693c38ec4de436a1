import type { FrontAnswer, FrontRequest, Rpc } from '../../common/app.js';
import type { Profile } from './data.js';

/** The hotel frontend's URLs (DeathStarBench's wrk2 scripts send these). */
export const HOTEL_ROUTES: ReadonlyArray<[string, string]> = [
  ['GET', '/hotels'],
  ['GET', '/recommendations'],
  ['POST', '/user'],
  ['GET', '/user'],
  ['POST', '/reservation'],
  ['GET', '/reservation'],
];

const json = (status: number, v: unknown): FrontAnswer => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) });

/** Profiles as the original answers them: a GeoJSON FeatureCollection. */
function geoJson(profiles: Profile[]): unknown {
  return { type: 'FeatureCollection', features: profiles.map((p) => ({ type: 'Feature', id: p.id, properties: { name: p.name, phone_number: p.phoneNumber }, geometry: { type: 'Point', coordinates: [p.address.lon, p.address.lat] } })) };
}

/** Query parameters, or form fields for a POST that sends them there. */
const param = (req: FrontRequest, k: string): string | undefined => req.query[k] ?? req.form[k];

export async function hotelFrontend(req: FrontRequest, rpc: Rpc): Promise<FrontAnswer> {
  try {
    switch (req.path) {
      case '/hotels': {
        const [inDate, outDate, lat, lon] = ['inDate', 'outDate', 'lat', 'lon'].map((k) => param(req, k));
        if (inDate === undefined || outDate === undefined) return json(400, { message: 'Please specify inDate/outDate params' });
        if (lat === undefined || lon === undefined || Number.isNaN(Number(lat)) || Number.isNaN(Number(lon))) return json(400, { message: 'Please specify location params' });
        const ids = (await rpc('search', 'nearby', [Number(lat), Number(lon), inDate, outDate])) as string[];
        const free = (await rpc('reservation', 'checkAvailability', ['', ids, inDate, outDate, 1])) as string[];
        return json(200, geoJson((await rpc('profile', 'getProfiles', [free])) as Profile[]));
      }
      case '/recommendations': {
        const [require, lat, lon] = ['require', 'lat', 'lon'].map((k) => param(req, k));
        if (require === undefined || !['dis', 'rate', 'price'].includes(require)) return json(400, { message: 'Please specify require params' });
        if (lat === undefined || lon === undefined || Number.isNaN(Number(lat)) || Number.isNaN(Number(lon))) return json(400, { message: 'Please specify location params' });
        const ids = (await rpc('recommendation', 'getRecommendations', [require, Number(lat), Number(lon)])) as string[];
        return json(200, geoJson((await rpc('profile', 'getProfiles', [ids])) as Profile[]));
      }
      case '/user': {
        const [username, password] = ['username', 'password'].map((k) => param(req, k));
        if (username === undefined || password === undefined) return json(400, { message: 'Please specify username and password' });
        const ok = (await rpc('user', 'checkUser', [username, password])) as boolean;
        return json(200, { message: ok ? 'Login successfully!' : 'Login failed. Please check your username and password. ' });
      }
      case '/reservation': {
        const [inDate, outDate, hotelId, customerName, username, password, number] = ['inDate', 'outDate', 'hotelId', 'customerName', 'username', 'password', 'number'].map((k) => param(req, k));
        if (inDate === undefined || outDate === undefined) return json(400, { message: 'Please specify inDate/outDate params' });
        if (hotelId === undefined || customerName === undefined || username === undefined || password === undefined || number === undefined) return json(400, { message: 'Please specify hotelId, customerName, username, password and number params' });
        if (!((await rpc('user', 'checkUser', [username, password])) as boolean)) return json(200, { message: 'Please check your username and password. ' });
        const made = (await rpc('reservation', 'makeReservation', [customerName, [hotelId], inDate, outDate, Number(number)])) as string[];
        return json(200, { message: made.length === 1 ? 'Reserve successfully!' : 'Failed. Already reserved. ' });
      }
      default:
        return json(404, { message: `no page ${req.path}` });
    }
  } catch (e) {
    return json(500, { message: e instanceof Error ? e.message : String(e) });
  }
}
