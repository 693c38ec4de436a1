import test from 'ava';
import { parseSpec } from '../src/proc/spec.js';
import { nodeDown, nodeUp } from '../src/control/scheduler/nodes.js';
import { beNodeNow } from '../src/control/scheduler/placing.js';
import type { ProcSpec } from '../src/proc/types.js';
import { beat, scheduler } from './helpers/scheduler-state.js';

const spec = (o: Record<string, unknown>): ProcSpec => {
  const r = parseSpec({ program: 'echo', realm: 'default', ...o });
  if (r._tag === 'Left') throw new Error(r.left.message);
  return r.right;
};

/** Three nodes, each on its own NATS server; s3 leads the control streams; the scheduler's own node is n3. */
function cluster(streams: Set<string>) {
  const w = scheduler({ localNode: 'n3', keepServicesOff: () => streams });
  for (const [id, server] of [['n1', 's1'], ['n2', 's2'], ['n3', 's3']] as const) nodeUp(w.s, beat(id, { natsServer: server }));
  return w;
}

test('placement - a proc to be restarted keeps off the node whose NATS server leads the control streams, while another has room', (t) => {
  const streams = new Set(['s3']);
  const { s } = cluster(streams);
  const service = spec({ restart: 'always' });
  t.is(beNodeNow(s, spec({})), 'n3', 'a function (restart never) goes to the scheduler\'s own node first, as before');
  t.not(beNodeNow(s, service), 'n3', 'a service does not');
  const lcService = spec({ restart: 'on-failure', lc: true, mcpu: 900 });
  const lc = s.placements.placeLc({ pid: 'lc1', mcpu: 900, memMb: 64 }, s.keepOff(lcService));
  t.deepEqual(lc, { kind: 'placed', node: 'n1' }, 'an LC service takes the best fit among the others');
  const lc2 = s.placements.placeLc({ pid: 'lc2', mcpu: 900, memMb: 64 }, s.keepOff(lcService));
  t.deepEqual(lc2, { kind: 'placed', node: 'n2' });
  const lc3 = s.placements.placeLc({ pid: 'lc3', mcpu: 900, memMb: 64 }, s.keepOff(lcService));
  t.deepEqual(lc3, { kind: 'placed', node: 'n3' }, 'no room elsewhere: the avoided node is used rather than none');
  streams.clear();
  streams.add('s1');
  t.is(beNodeNow(s, service), 'n3', 'once the streams move, the scheduler\'s node is fine again');
});

test('placement - BE services fill the other nodes\' slots before the avoided one, and a node gone takes its server with it', (t) => {
  const { s } = cluster(new Set(['s1']));
  const service = spec({ restart: 'always' });
  const placed: string[] = [];
  for (let i = 0; i < 9; i++) {
    const node = beNodeNow(s, service)!;
    placed.push(node);
    s.placements.assign({ pid: `p${i}`, mcpu: service.mcpu, memMb: service.memMb }, node);
    s.countBe(node, 1);
  }
  t.is(placed.filter((n) => n === 'n1').length, 1, `only once the others' 8 slots are full: ${placed.join(' ')}`);
  t.is(placed.at(-1), 'n1');
  nodeDown(s, 'n2');
  t.false(s.natsServers.has('n2'));
});
