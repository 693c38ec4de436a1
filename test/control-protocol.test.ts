import test from 'ava';
import fc from 'fast-check';
import * as p from '../src/control/protocol/index.js';
import { ControlError } from '../src/control/errors.js';
import { testCluster, untilScheduler, type TestCluster } from './helpers/cluster.js';

const order: p.RunOrder = { pid: 'p-1-1', spec: { program: 'hello', args: [], realm: 'default', lc: false, mcpu: 0, memMb: 0, dedicated: false, restart: 'never', maxRestarts: 5, restartWithinMs: 1000, evictWithParent: false }, modulePath: '/m.js' };
const record: p.ProcRecord = { pid: 'p-1-1', spec: order.spec, state: 'queued', restarts: 0, term: 1, createdAtMs: 0 };

/** Every decoder of the protocol, with one value it must accept. */
const DECODERS: Array<[string, p.Decoder<unknown>, unknown]> = [
  ['spawn request', p.SPAWN.request, { program: 'hello' }],
  ['spawn reply', p.SPAWN.reply, { ok: true, pid: 'p-1-1' }],
  ['evict request', p.EVICT.request, { pid: 'p-1-1', graceMs: 10 }],
  ['ack', p.EVICT.reply, { ok: false, error: { type: 'unknown-proc', message: 'no' } }],
  ['realm request', p.REALM_CREATE.request, { name: 'blue' }],
  ['proc event', p.PROC_EVENT.message, { type: 'exited', pid: 'p-1-1', node: 'n', status: { kind: 'ok', message: 'ok' } }],
  ['dp gone', p.DP_GONE.message, { node: 'n', endpoints: [1, 2] }],
  ['node request', p.NODE.request, { op: 'run', order: { ...order, record, revision: 3 } }],
  ['run order of a deployed program, its chunk named', p.NODE.request, { op: 'run', order: { ...order, program: { hash: 'a'.repeat(64), version: 2, chunk: 'Xyz0123' } } }],
  ['node status reply', p.NODE.dataPathStatus, { ok: true, status: { mode: 'bpf' } }],
  ['node call reply', p.NODE.dataPathCall, { ok: true, answer: 'hi' }],
  ['proc record', p.procRecord, record],
  ['node record', p.nodeRecord, { id: 'n', mcpu: 1, memMb: 1, address: 'n', startedAtMs: 0, heartbeatSeq: 0, beSlots: 4 }],
  ['name record', p.nameRecord, { realm: 'default', name: 'echo', pid: 'p-1-1', actorPath: 'a', node: 'n', endpoint: 7, exports: ['blue'] }],
  ['lease record', p.leaseRecord, { holder: 'n', term: 2 }],
];

test('protocol - every decoder accepts what its encoder writes, byte for byte', (t) => {
  for (const [what, decode, value] of DECODERS) {
    const back = decode(p.decodeJson(p.encode(value)));
    t.deepEqual(back, value, what);
    t.deepEqual(p.encode(back), p.encode(value), `${what}: re-encoded identically`);
  }
});

test('protocol - decoders refuse malformed input and never throw', (t) => {
  const malformed: Array<[string, p.Decoder<unknown>, unknown]> = [
    ['spawn request', p.SPAWN.request, 'hello'],
    ['evict request', p.EVICT.request, { pid: 7 }],
    ['evict grace', p.EVICT.request, { pid: 'p', graceMs: 'soon' }],
    ['node record, fractional BE slots', p.nodeRecord, { id: 'n', mcpu: 1, memMb: 1, address: 'n', startedAtMs: 0, heartbeatSeq: 0, beSlots: 1.5 }],
    ['node request op', p.NODE.request, { op: 'format-disk' }],
    ['run order without spec', p.NODE.request, { op: 'run', order: { pid: 'p', modulePath: '/m.js' } }],
    ['created without revision', p.NODE.request, { op: 'created', pid: 'p' }],
    ['run order, a program chunk that is not a string', p.NODE.request, { op: 'run', order: { ...order, program: { hash: 'a'.repeat(64), version: 2, chunk: 7 } } }],
    ['dp gone, a string endpoint', p.DP_GONE.message, { node: 'n', endpoints: [1, '2'] }],
    ['dp gone, too many', p.DP_GONE.message, { node: 'n', endpoints: Array.from({ length: p.GONE_ENDPOINTS_MAX + 1 }, (_, i) => i) }],
    ['proc event status', p.PROC_EVENT.message, { type: 'exited', pid: 'p', node: 'n' }],
    ['ack error', p.EVICT.reply, { ok: false, error: 'no' }],
    ['spawn reply pid', p.SPAWN.reply, { ok: true }],
    ['name record endpoint', p.nameRecord, { realm: 'r', name: 'n', pid: 'p', actorPath: 'a', endpoint: 'x' }],
    ['proc record state', p.procRecord, { ...record, state: 'zombie' }],
  ];
  for (const [what, decode, value] of malformed) t.is(decode(value), undefined, what);
  t.is(p.decodeNameRecord(new TextEncoder().encode('{not json')), undefined);
  fc.assert(
    fc.property(fc.jsonValue(), fc.integer({ min: 0, max: DECODERS.length - 1 }), (v, i) => {
      const decoded = DECODERS[i]![1](v);
      // A refusal, or the value itself: decoders check, they never rebuild.
      return decoded === undefined || decoded === v;
    }),
    { numRuns: 2_000 },
  );
});

test('protocol - an unknown error type from a peer stays visible, typed internal', (t) => {
  const e = ControlError.fromWire({ type: 'from-the-future', message: 'new' });
  t.is(e.type, 'internal');
  t.regex(e.message, /from-the-future: new/);
  t.is(ControlError.fromWire({ type: 'queue-full', message: 'full' }).type, 'queue-full');
});

let tc: TestCluster | undefined;
test.after.always(async () => tc?.stop());

test.serial('protocol - malformed requests to a real scheduler and node get typed refusals; both keep serving', async (t) => {
  tc = await testCluster({ nodes: 1, node: { mcpu: 1000, memMb: 1024, beSlots: 2 } }, ['default']);
  const bus = tc.client.bus;
  await untilScheduler(() => tc!.client.realms());
  for (const [subject, body] of [
    [p.EVICT.subject, { pid: 42 }],
    [p.REALM_CREATE.subject, ['blue']],
    [p.NODE.subject('node-1'), { op: 'run', order: { pid: 'x' } }],
    [p.NODE.subject('node-1'), 'not an object'],
  ] as const) {
    const reply = p.EVICT.reply(p.decodeJson((await bus.request(subject, p.encode(body), { timeoutMs: 5_000 })).data));
    t.true(reply !== undefined && !reply.ok && reply.error.type === 'bad-request', `${subject}: ${JSON.stringify(reply)}`);
  }
  const notJson = p.decodeJson((await bus.request(p.SPAWN.subject, new TextEncoder().encode('{'), { timeoutMs: 5_000 })).data);
  t.like(p.SPAWN.reply(notJson), { ok: false, error: { type: 'bad-request' } });
  const pid = await tc.client.spawn({ program: 'hello', args: ['still'] });
  t.like(await tc.client.waitExit(pid, { timeoutMs: 20_000 }), { kind: 'ok', data: 'hello still' });
});

/** Spec fields as a careless or hostile caller writes them: mostly the right type, sometimes not, or absent. */
const junk = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }));
/** Mostly valid, sometimes a wrong value of the right type, sometimes junk. */
const field = <T, B>(valid: fc.Arbitrary<T>, bad: fc.Arbitrary<B>) => fc.oneof({ arbitrary: valid, weight: 20 }, { arbitrary: bad, weight: 1 }, { arbitrary: junk, weight: 1 });
const specArb = fc.record(
  {
    program: field(fc.constantFrom('hello', 'fail', 'sleep', 'counter'), fc.constantFrom('constructor', '__proto__', 'toString', 'nowhere', '')),
    args: field(fc.array(fc.oneof(fc.constantFrom('1', '50', 'x'), fc.string({ maxLength: 6 })), { maxLength: 3 }), fc.constant([1, null])),
    realm: field(fc.constant('default'), fc.constantFrom('nowhere', '', 'default.x', 'Default')),
    lc: field(fc.boolean(), fc.constant('true')),
    mcpu: field(fc.integer({ min: 0, max: 1_500 }), fc.constantFrom(-1, 1e9, 0.5)),
    memMb: field(fc.integer({ min: 1, max: 2_000 }), fc.constantFrom(0, -10, 1e12)),
    dedicated: field(fc.boolean(), fc.constant(1)),
    restart: field(fc.constantFrom('never', 'on-failure', 'always'), fc.constant('sometimes')),
    maxRestarts: field(fc.integer({ min: 0, max: 3 }), fc.constant(-2)),
    name: field(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), fc.constantFrom('a.b.', '*', '>', '.')),
    idempotencyKey: field(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.constantFrom('', 'a b', 'x'.repeat(65))),
  },
  { requiredKeys: ['program'] },
);

test.serial('protocol - random spawn specs get a typed refusal or a proc that reaches a terminal status; the control plane keeps serving', async (t) => {
  t.truthy(tc, 'runs after the malformed-requests test, on its cluster');
  const bus = tc!.client.bus;
  const accepted = new Set<string>();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(specArb, async (spec) => {
      // A repeated key is the first spawn's pid by design (shrinking repeats values): keep keys apart.
      if (typeof spec.idempotencyKey === 'string' && spec.idempotencyKey !== '') spec = { ...spec, idempotencyKey: `${spec.idempotencyKey}${++sent}` };
      const raw = await bus.request(p.SPAWN.subject, p.encode(spec), { timeoutMs: 10_000 });
      const reply = p.SPAWN.reply(p.decodeJson(raw.data));
      if (reply === undefined) throw new Error(`undecodable reply to ${JSON.stringify(spec)}`);
      if (!reply.ok) {
        if (!(p.CONTROL_ERROR_TYPES as readonly string[]).includes(reply.error.type) || reply.error.type === 'internal') throw new Error(`${JSON.stringify(spec)}: ${JSON.stringify(reply.error)}`);
        return;
      }
      accepted.add(reply.pid);
      // Whatever it runs (a service, a restarting failure, a proc queued for room), an eviction ends it;
      // one that ended first is no longer running or queued.
      await tc!.client.evict(reply.pid, { graceMs: 0 }).catch((e: unknown) => {
        if (!(e instanceof ControlError && e.type === 'unknown-proc')) throw new Error(`evict ${reply.pid} of ${JSON.stringify(spec)}: ${String(e)}`);
      });
      await tc!.client.waitExit(reply.pid, { timeoutMs: 20_000 });
    }),
    { numRuns: 60, includeErrorInReport: true },
  );
  t.log(`${accepted.size} of 60 random specs accepted`);
  t.true(accepted.size > 0, 'the generator reaches the accepting path too');
  t.is(tc!.cluster.nodes.get('node-1')?.exitCode, null, 'the node process is alive');
  const pid = await tc!.client.spawn({ program: 'hello', args: ['after'] });
  t.like(await tc!.client.waitExit(pid, { timeoutMs: 20_000 }), { kind: 'ok', data: 'hello after' });
});
