/**
 * DeathStarBench's hotel wrk2 mixed workload (search 60 %, recommend 39 %, login 0.5 %, reserve 0.5 %),
 * run by apps/common/loadgen.ts: `node loadgen.js <port> <connections> <durationS> [ratePerS]` (closed
 * loop without a rate, open loop with one, as wrk2 runs it). Parameters are drawn as the original Lua
 * script draws them, from a seeded generator per visitor.
 */
import { main, type Mix, type MixRequest } from '../common/loadgen.js';

/** 200 slots in the mix's proportions. */
const MIX: Array<'search' | 'recommend' | 'login' | 'reserve'> = [...Array<'search'>(120).fill('search'), ...Array<'recommend'>(78).fill('recommend'), 'login', 'reserve'];
for (let i = MIX.length - 1; i > 0; i--) {
  const j = (i * 7919) % (i + 1);
  [MIX[i], MIX[j]] = [MIX[j]!, MIX[i]!];
}

interface Ctx { seed?: number }
/** xorshift32 per connection: the same run twice draws the same parameters. */
function rnd(ctx: Ctx, lo: number, hi: number): number {
  let x = (ctx.seed ??= 0x9e3779b9 ^ Math.floor(Math.random() * 0xffffffff)) | 0;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  ctx.seed = x >>> 0;
  return lo + (ctx.seed % (hi - lo + 1));
}

type Kind = (typeof MIX)[number];

function request(kind: Kind, ctx: Ctx): MixRequest {
  const inDay = rnd(ctx, 9, 23);
  const outDay = inDay + rnd(ctx, 1, 5);
  const dates = `inDate=2015-04-${String(inDay).padStart(2, '0')}&outDate=2015-04-${String(outDay).padStart(2, '0')}`;
  const at = `lat=${(38.0235 + (rnd(ctx, 0, 481) - 240.5) / 1000).toFixed(4)}&lon=${(-122.095 + (rnd(ctx, 0, 325) - 157.0) / 1000).toFixed(4)}`;
  const id = rnd(ctx, 0, 500);
  const auth = `username=Cornell_${id}&password=${String(id).repeat(10)}`;
  switch (kind) {
    case 'search':
      return { method: 'GET', path: `/hotels?${dates}&${at}` };
    case 'recommend':
      return { method: 'GET', path: `/recommendations?require=${['dis', 'rate', 'price'][rnd(ctx, 0, 2)]}&${at}` };
    case 'login':
      return { method: 'POST', path: `/user?${auth}` };
    case 'reserve':
      return { method: 'POST', path: `/reservation?${dates}&${at}&hotelId=${rnd(ctx, 1, 80)}&customerName=Cornell_${id}&${auth}&number=1` };
  }
}

export const hotelMix: Mix<Kind, Ctx> = { tasks: MIX, request };

await main(hotelMix);
