import test from 'ava';
import { parseRoute, RouteError, type RouteRecord } from '../src/control/protocol/index.js';
import { errorStatus } from '../src/gateway/errors.js';
import { httpAnswer, readAnswer, readRequest, encodeHead, writeHead } from '../src/gateway/envelope.js';
import { RouteTable } from '../src/gateway/route-table.js';

const route = (name: string, method: string, path: string, extra: Partial<RouteRecord> = {}): RouteRecord => {
  const r = parseRoute({ realm: 'a', name, method, path, ...extra });
  if (r instanceof RouteError) throw r;
  return { ...r, ...extra };
};

test('gateway routes - the most specific route wins: literals over :params over a trailing /*, a host over none', (t) => {
  const rt = new RouteTable();
  rt.put('a.any', route('any', 'GET', '/product/*'));
  rt.put('a.param', route('param', 'GET', '/product/:id'));
  rt.put('a.exact', route('exact', 'GET', '/product/special'));
  rt.put('a.hosted', route('hosted', 'GET', '/product/:id', { host: 'shop.example' }));
  t.is(rt.match('GET', undefined, '/product/special')?.route.name, 'exact');
  t.deepEqual(rt.match('GET', undefined, '/product/OLJCESPC7Z')?.params, { id: 'OLJCESPC7Z' });
  t.is(rt.match('GET', 'shop.example', '/product/x')?.route.name, 'hosted');
  t.deepEqual(rt.match('GET', undefined, '/product/a/b'), { route: rt.routes().find((r) => r.name === 'any')!, params: { '*': 'a/b' } });
  t.is(rt.match('HEAD', undefined, '/product/1')?.route.name, 'param', 'HEAD is served by a GET route');
  t.is(rt.match('POST', undefined, '/product/1'), undefined);
  t.is(rt.match('GET', undefined, '/'), undefined);
  t.deepEqual(rt.match('GET', undefined, '/product/caf%C3%A9')?.params, { id: 'café' });
  t.true(rt.delete('a.exact'));
  t.is(rt.match('GET', undefined, '/product/special')?.route.name, 'param');
  t.deepEqual([...rt.realms()], ['a']);
});

test('gateway routes - bad routes are refused with the field named; defaults fill the rest', (t) => {
  const ok = parseRoute({ realm: 'a', name: 'cart', path: '/cart' });
  t.false(ok instanceof RouteError);
  if (!(ok instanceof RouteError)) t.deepEqual([ok.method, ok.target, ok.envelope], ['GET', ['cart'], 'body']);
  const field = (r: ReturnType<typeof parseRoute>): string => (r instanceof RouteError ? r.field : 'accepted');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: 'cart' })), 'path');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/metrics' })), 'path', 'the gateway keeps /metrics');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', method: 'BREW' })), 'method');
  t.is(field(parseRoute({ realm: 'A', name: 'x', path: '/x' })), 'realm');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', target: [] })), 'target');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', target: 'b/c/d' })), 'target');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', bodyBytesMax: -1 })), 'bodyBytesMax');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', deadlineMs: 0 })), 'deadlineMs');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', envelope: 'grpc' })), 'envelope');
  t.is(field(parseRoute({ realm: 'a', name: 'x', path: '/x', target: 'b/shared, c' })), 'accepted');
});

test('gateway envelope - a request head and body round-trip; an answer carries its status; a plain answer is 200', (t) => {
  const head = encodeHead({ method: 'GET', url: '/p/1?x=2', path: '/p/1', query: { x: '2' }, params: { id: '1' }, headers: {} });
  const buf = new Uint8Array(4 + head.length + 3);
  writeHead(buf, head).valueOf();
  buf.set([1, 2, 3], 4 + head.length);
  const r = readRequest(buf);
  t.deepEqual(r.head.params, { id: '1' });
  t.deepEqual([...r.body], [1, 2, 3]);
  const a = readAnswer(httpAnswer(302, 'moved', { location: '/' }));
  t.false(a instanceof Error);
  if (!(a instanceof Error)) t.deepEqual([a.head.status, a.head.headers, new TextDecoder().decode(a.body)], [302, { location: '/' }, 'moved']);
  const plain = readAnswer(new TextEncoder().encode('just bytes'));
  t.false(plain instanceof Error);
  if (!(plain instanceof Error)) t.is(plain.head.status, 200);
  const bad = httpAnswer(200, 'x');
  bad[4] = 0xff; // a head length that does not fit
  t.true(readAnswer(bad) instanceof Error);
});

test('gateway errors - each data-path failure maps to its status', (t) => {
  const s = (type: string): number => errorStatus({ type }).status;
  t.deepEqual([s('pool-exhausted'), s('credit-timeout'), s('unknown-target'), s('remote-handler'), s('endpoint-closed'), s('call-timeout'), s('alloc-too-large'), s('something-new')], [503, 503, 503, 502, 502, 504, 413, 502]);
});

test('sigma top - reads prom-client text and sums routes over nodes', async (t) => {
  const { parseMetrics, render } = await import('../src/cli/top.js');
  const text = [
    '# HELP sigma_gateway_requests_total x',
    'sigma_gateway_requests_total{realm="a",route="echo",code="200",node="n1"} 3',
    'sigma_gateway_errors_total{realm="a",route="echo",kind="deadline",node="n1"} 1',
    'sigma_gateway_request_seconds_bucket{le="0.001",realm="a",route="echo",node="n1"} 2',
    'sigma_gateway_request_seconds_bucket{le="0.01",realm="a",route="echo",node="n1"} 3',
    'sigma_gateway_request_seconds_bucket{le="+Inf",realm="a",route="echo",node="n1"} 4',
    'sigma_procs{realm="a",node="n1"} 2',
  ].join('\n');
  const s = parseMetrics(text);
  t.is(s.length, 6);
  t.deepEqual(s[0], { name: 'sigma_gateway_requests_total', labels: { realm: 'a', route: 'echo', code: '200', node: 'n1' }, value: 3 });
  const r = render([{ node: 'n1', samples: s }, { node: 'n2', samples: parseMetrics(text) }, { node: 'n3', samples: 'unreachable' }]).data as { routes: Array<Record<string, unknown>>; nodes: Array<Record<string, unknown>> };
  t.deepEqual(r.routes, [{ route: 'a/echo', requests: 6, errors: 2, p50Ms: '<=1', p99Ms: '>10' }]);
  t.is(r.nodes[0]!['procs'], 'a=2');
  t.is(r.nodes[2]!['status'], 'unreachable');
});
