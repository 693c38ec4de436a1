import test from 'ava';
import { armFaults, parseFailSpec, type FailAction } from '../src/chaos/sigmafail.js';
import { virtualPorts } from '../src/ports/index.js';

test('sigmafail - a spec parses into typed rules; malformed ones are refused naming the entry', (t) => {
  t.deepEqual(parseFailSpec('node-2:0.5:1000:crash, *:1:50:delay'), [
    { label: 'node-2', prob: 0.5, intervalMs: 1000, action: 'crash' },
    { label: '*', prob: 1, intervalMs: 50, action: 'delay' },
  ]);
  t.deepEqual(parseFailSpec(undefined), []);
  for (const bad of ['node-2:2:1000:crash', 'node-2:0.1:5:crash', 'node-2:0.1:1000:explode', 'Node:0.1:1000:crash', 'a:0.1:1000']) t.throws(() => parseFailSpec(bad), { name: 'FailSpecError' }, bad);
});

test('sigmafail - the rules of a label fire with their probability, the same way for the same seed', async (t) => {
  const run = async (seed: number): Promise<Array<[FailAction, number]>> => {
    const ports = virtualPorts(1);
    const fired: Array<[FailAction, number]> = [];
    const effects = { crash: () => fired.push(['crash', ports.clock.nowMs()]), partition: () => fired.push(['partition', ports.clock.nowMs()]), delay: () => fired.push(['delay', ports.clock.nowMs()]) };
    const stop = armFaults('node-1', parseFailSpec('node-1:0.3:100:crash,node-2:1:100:partition,*:0.5:250:delay'), { seed, timers: ports.timers, effects });
    await ports.time.advance(10_000);
    stop();
    return fired;
  };
  const a = await run(7);
  t.deepEqual(await run(7), a, 'a seed repeats its schedule');
  t.notDeepEqual(await run(8), a, 'another seed draws another');
  t.false(a.some(([act]) => act === 'partition'), "another label's rule never fires here");
  const crashes = a.filter(([act]) => act === 'crash').length;
  t.true(crashes > 15 && crashes < 45, `about 30 % of 100 draws crash (${crashes})`);
});
