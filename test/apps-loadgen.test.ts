import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Mix } from '../apps/common/loadgen.js';
import { replayCycle, wrkAvailable, wrkClosedLoop } from '../apps/common/wrk.js';

// A visitor posts to its own path, then reads it back: order within a visitor is what the replay keeps.
let visitors = 0;
const mix: Mix<'post' | 'get', { id?: number }> = {
  tasks: ['post', 'get'],
  request: (task, ctx) => {
    ctx.id ??= visitors++;
    return task === 'post' ? { method: 'POST', path: `/v/${ctx.id}`, headers: { 'content-type': 'text/plain' }, body: `héllo ${ctx.id}` } : { method: 'GET', path: `/v/${ctx.id}` };
  },
};

test('replay cycle: visitors interleaved, each visitor in task order, requests well formed', (t) => {
  visitors = 0;
  const cycle = replayCycle(mix, '127.0.0.1:1', 3);
  t.is(cycle.length, 6);
  t.deepEqual(cycle.map((r) => r.split(' ').slice(0, 2).join(' ')), ['POST /v/0', 'POST /v/1', 'POST /v/2', 'GET /v/0', 'GET /v/1', 'GET /v/2']);
  const post = cycle[0]!;
  const [head, body] = post.split('\r\n\r\n') as [string, string];
  t.true(head.includes('\r\nhost: 127.0.0.1:1'));
  t.true(head.includes(`\r\ncontent-length: ${Buffer.byteLength(body)}`), 'the length in bytes, not characters');
  t.is(body, 'héllo 0');
  t.false(cycle.some((r) => r.includes('\0')), 'NUL separates requests in the replay file');
});

test('wrk closed loop: counts answers, and a visitor never has its two requests in flight at once', async (t) => {
  if (!(await wrkAvailable())) return t.pass('wrk is not installed (bootstrap installs it): autocannon runs the closed loop');
  visitors = 0;
  const posted = new Set<string>();
  let outOfOrder = 0;
  let served = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      served++;
      if (req.method === 'POST') posted.add(req.url!);
      else if (!posted.has(req.url!)) outOfOrder++;
      res.statusCode = req.url === '/v/7' ? 500 : 200; // one visitor's answers count as errors
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const r = await wrkClosedLoop(mix, `http://127.0.0.1:${port}`, 4, 1);
    t.true(r.requests.total > 100, `${r.requests.total} requests`);
    t.true(Math.abs(r.requests.total - served) <= 4, 'what wrk counts is what the server answered (but those in flight at the end)');
    t.is(outOfOrder, 0, 'every GET came after its visitor\'s POST');
    t.true(r.errors > 0, 'non-2xx answers count as errors');
    t.true(r.duration > 0.9 && r.duration < 5);
  } finally {
    server.close();
  }
});
