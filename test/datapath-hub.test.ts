import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Endpoint, type Message } from '../src/datapath/endpoint.js';
import { encodeFrame, linkPair, SocketLink } from '../src/datapath/frames.js';
import { Hub, type Registration } from '../src/datapath/hub.js';
import { Pool } from '../src/datapath/pool.js';
import { realTimers } from '../src/ports/index.js';

/** Waits (bounded) for a condition that real sockets will make true. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never happened: ${what}`);
}

interface Harness {
  hub: Hub;
  warnings: Array<{ reason: string }>;
  buffers: Map<string, ArrayBuffer>;
  /** A real unix-socket connection to the hub, registered as (realm, id), with an Endpoint on the far end. */
  connect(realm: string, id: number, options?: { inFlightMax?: number }): Promise<{ ep: Endpoint; socket: Socket; inbox: Message[] }>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-hub-'));
  const path = join(dir, 'hub.sock');
  const warnings: Array<{ reason: string }> = [];
  const hub = new Hub({ logger: { warn: (o) => warnings.push(o as { reason: string }) } });
  const buffers = new Map<string, ArrayBuffer>();
  for (const realm of ['a', 'b']) {
    const buf = new ArrayBuffer(8 << 20);
    const pool = Pool.format(buf);
    if (pool._tag === 'Left') throw pool.left;
    hub.attachPool(realm, pool.right);
    buffers.set(realm, buf);
  }
  // In production the node manager hands each host one end of a socketpair at fork; a listening unix
  // socket in a private directory is the same kind of socket for a test in one process.
  const expected: Registration[] = [];
  const server: Server = createServer((sock) => {
    const reg = expected.shift()!;
    const r = hub.attachSocket(reg, sock);
    if (r._tag === 'Left') sock.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const endpoints: Endpoint[] = [];
  return {
    hub,
    warnings,
    buffers,
    async connect(realm, id, options = {}) {
      const before = hub.stats().endpoints;
      expected.push({ realm, endpoint: id });
      const socket = createConnection(path);
      await new Promise<void>((r) => socket.once('connect', r));
      await until(() => hub.stats().endpoints === before + 1, `endpoint ${id} registered`);
      const pool = Pool.attach(buffers.get(realm)!); // the host's own mapping of its realm's pool
      if (pool._tag === 'Left') throw pool.left;
      const ep = new Endpoint({ id, pool: pool.right, link: new SocketLink(socket), timers: realTimers, credits: { inFlightMax: options.inFlightMax ?? 64 } });
      const inbox: Message[] = [];
      ep.onMessage((m) => inbox.push(m));
      endpoints.push(ep);
      return { ep, socket, inbox };
    },
    async close() {
      endpoints.forEach((e) => e.close());
      hub.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const text = (m: Message): string => Buffer.from(m.bytes).toString();
const used = (h: Harness, realm: string): number => {
  const p = Pool.attach(h.buffers.get(realm)!);
  return p._tag === 'Right' ? p.right.stats().bytesUsed : -1;
};

test('hub - two endpoints of one realm exchange descriptors over real unix sockets; buffers come back', async (t) => {
  const h = await harness();
  const a1 = await h.connect('a', 11);
  const a2 = await h.connect('a', 12);
  const sent = await a1.ep.send(12, Buffer.from('hello from 11'), { requestId: 42n });
  t.is(sent._tag, 'Right');
  await until(() => a2.inbox.length === 1, 'a2 got the message');
  const m = a2.inbox.shift()!;
  t.is(m.src, 11);
  t.is(m.requestId, 42n);
  t.is(text(m), 'hello from 11');
  // The reply forwards the very same buffer (zero copy): take it, overwrite, send it back.
  const buf = m.take();
  a2.ep.pool.bytes(buf.offset, 5).set(Buffer.from('hi 11'));
  t.is((await a2.ep.sendBuffer(11, buf, 5, { requestId: 43n }))._tag, 'Right');
  await until(() => a1.inbox.length === 1, 'a1 got the reply');
  const reply = a1.inbox.shift()!;
  t.is(text(reply), 'hi 11');
  t.is(reply.requestId, 43n);
  reply.release();
  await until(() => used(h, 'a') === 0 && a1.ep.stats().credits.inFlight === 0 && a2.ep.stats().credits.inFlight === 0, 'buffers freed and credits back');
  t.is(h.hub.stats().routed >= 2, true);
  t.deepEqual(a2.ep.stats().rejected, { 'out-of-range': 0, misaligned: 0, 'too-long': 0, 'not-live': 0, 'stale-generation': 0, 'wrong-owner': 0 });

  // Round trips over the hub (measured, not asserted).
  a2.ep.onMessage((q) => {
    const b = q.take();
    void a2.ep.sendBuffer(11, b, q.lengthBytes);
  });
  let pongs = 0;
  let pong: () => void = () => {};
  a1.ep.onMessage((p) => {
    pongs++;
    p.release();
    pong();
  });
  const n = 2000;
  const pingPong = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const got = new Promise<void>((r) => (pong = r));
      await a1.ep.send(12, Buffer.alloc(16, i & 0xff));
      await got;
    }
    return Number(process.hrtime.bigint() - t0) / n / 1000;
  };
  await pingPong(); // warm up the JIT
  t.log(`hub round trip (16 B, 4 unix-socket hops, hub and both endpoints in one process): ${(await pingPong()).toFixed(1)} µs`);
  t.is(pongs, 2 * n);
  await until(() => used(h, 'a') === 0, 'ping-pong buffers freed');
  await h.close();
});

test('hub - an endpoint of realm B gets nothing delivered into realm A, forged or not; attempts are counted and logged', async (t) => {
  const h = await harness();
  const a1 = await h.connect('a', 21);
  const a2 = await h.connect('a', 22);
  const b1 = await h.connect('b', 31);
  // 1. An honest descriptor across realms: dropped, and b1's buffer is freed by the hub.
  t.is((await b1.ep.send(21, Buffer.from('let me in')))._tag, 'Right');
  await until(() => h.hub.stats().dropped['cross-realm'] === 1, 'cross-realm drop');
  await until(() => used(h, 'b') === 0, "b1's dropped buffer freed");
  // 2. b1 claims to be a2 and names a2's real buffer: the hub knows the link is b1's.
  const victim = a2.ep.alloc(64);
  if (victim._tag === 'Left') throw victim.left;
  b1.socket.write(encodeFrame({ dstEp: 21, srcEp: 22, offset: victim.right.offset, length: 64, generation: victim.right.generation, flags: 0, requestId: 0n }));
  // 3. Unknown destination.
  b1.socket.write(encodeFrame({ dstEp: 999, srcEp: 31, offset: 0, length: 0, generation: 0, flags: 0, requestId: 0n }));
  await until(() => h.hub.stats().dropped['spoofed-src'] === 1 && h.hub.stats().dropped['unknown-dst'] === 1, 'spoof and unknown counted');
  // A legitimate message afterwards is the only thing a1 ever sees.
  await a2.ep.send(21, Buffer.from('legit'));
  await until(() => a1.inbox.length === 1, 'legit message');
  t.is(a1.inbox[0]!.src, 22);
  t.is(text(a1.inbox[0]!), 'legit');
  a1.inbox[0]!.release();
  const still = a2.ep.pool.inspect(victim.right.offset, 64);
  t.is(still._tag === 'Right' && still.right.owner, 22, "a2's buffer is untouched and still a2's");
  t.deepEqual(
    h.warnings.map((w) => w.reason).sort(),
    ['cross-realm', 'spoofed-src', 'unknown-dst'],
  );
  a2.ep.pool.free(22, victim.right.offset, victim.right.generation);
  await until(() => used(h, 'a') === 0, 'realm a pool back to empty');
  await h.close();
});

test('hub - an exported endpoint is reachable from another realm (payload copied across pools) and can answer', async (t) => {
  const h = await harness();
  const a1 = await h.connect('a', 41);
  const b1 = await h.connect('b', 51);
  t.is(h.hub.export(41, 'b')._tag, 'Right');
  t.is((await b1.ep.send(41, Buffer.from('request from b'), { requestId: 7n }))._tag, 'Right');
  await until(() => a1.inbox.length === 1, 'a1 got the cross-realm request');
  const req = a1.inbox.shift()!;
  t.is(req.src, 51);
  t.is(text(req), 'request from b');
  t.is(req.requestId, 7n);
  req.release();
  t.is((await a1.ep.send(51, Buffer.from('answer from a')))._tag, 'Right');
  await until(() => b1.inbox.length === 1, 'b1 got the answer');
  t.is(text(b1.inbox[0]!), 'answer from a');
  b1.inbox.shift()!.release();
  t.is(h.hub.stats().copied, 2);
  await until(() => b1.ep.stats().credits.inFlight === 0 && a1.ep.stats().credits.inFlight === 0, 'credits came back across realms');
  await until(() => used(h, 'a') === 0 && used(h, 'b') === 0, 'both pools back to empty');
  // Unexported: the door closes again.
  h.hub.unexport(41, 'b');
  await b1.ep.send(41, Buffer.from('again'));
  await until(() => h.hub.stats().dropped['cross-realm'] === 1, 'dropped after unexport');
  t.is(a1.inbox.length, 0);
  await until(() => used(h, 'b') === 0, 'dropped buffer freed');
  await h.close();
});

test('hub - credits bound what a slow receiver holds, over real sockets; unaccepted buffers of a gone receiver are freed', async (t) => {
  const h = await harness();
  const a1 = await h.connect('a', 61, { inFlightMax: 4 });
  const a2 = await h.connect('a', 62);
  let held = 0;
  let maxHeld = 0;
  let got = 0;
  a2.ep.onMessage((m) => {
    held++;
    got++;
    maxHeld = Math.max(maxHeld, held);
    setTimeout(() => {
      held--;
      m.release();
    }, 2);
  });
  const total = 40;
  for (let i = 0; i < total; i++) {
    const r = await a1.ep.send(62, Buffer.from(`m${i}`), { timeoutMs: 5000 });
    t.is(r._tag, 'Right');
    t.true(a1.ep.stats().credits.inFlight <= 4);
  }
  await until(() => got === total && held === 0, 'all consumed');
  t.true(maxHeld <= 4, `receiver held at most ${maxHeld}`);
  await until(() => used(h, 'a') === 0, 'pool back to empty');
  // Credits come back in frames of their own, after the buffers are freed: all four before the count below.
  await until(() => a1.ep.stats().credits.inFlight === 0, 'credits back');

  // A receiver that stops reading (its proc hung, then died): frames sit in its socket, never accepted.
  a2.socket.pause();
  for (let i = 0; i < 3; i++) t.is((await a1.ep.send(62, Buffer.from('lost'), { timeoutMs: 5000 }))._tag, 'Right');
  const full = a1.ep.trySendBuffer(62, { offset: 0, generation: 0 }, 0);
  t.is(full._tag, 'Right', 'one credit left');
  t.is(a1.ep.trySendBuffer(62, { offset: 0, generation: 0 }, 0)._tag, 'Left', 'then none');
  await until(() => used(h, 'a') === 3 * 256, 'three buffers pinned');
  t.is(a1.ep.closeDestination(62), 3, 'the sender frees what the dead receiver never accepted');
  t.is(used(h, 'a'), 0);
  await h.close();
});

test('endpoint - a gone endpoint of another node: what was sent to it stays for the channel to free, not freed by the sender', (t) => {
  const buf = new SharedArrayBuffer(4 << 20);
  const pool = Pool.format(buf);
  if (pool._tag === 'Left') throw pool.left;
  const p = pool.right;
  // A sender of node 1's range; the destination is of node 2's (ids: src/node/datapath/ids.ts).
  const [nodeSide, epSide] = linkPair();
  const written: Buffer[] = [];
  nodeSide.onFrames((f) => written.push(Buffer.from(f)));
  const me = (1 << 20) + 5;
  const remote = (2 << 20) + 7;
  const ep = new Endpoint({ id: me, pool: p, link: epSide, timers: realTimers });
  const a = ep.alloc(100);
  if (a._tag === 'Left') throw a.left;
  t.is(ep.trySendBuffer(remote, a.right, 100, 1n)._tag, 'Right');
  // The node's channel holds the send (it writes the payload from the pool) when the destination is
  // announced gone: the sender must leave the buffer alone...
  t.is(ep.closeDestination(remote), 0);
  const info = p.inspect(a.right.offset, 100);
  t.is(info._tag === 'Right' ? info.right.owner : 0, me, 'still the sender\'s, in flight over the channel');
  // ... so that the channel's free when the send settles is the one that frees it.
  t.is(p.free(me, a.right.offset, a.right.generation)._tag, 'Right');
  t.is(p.stats().bytesUsed, 0);
  // A destination of its own node gone: the frames died in its socket, the sender frees them (as above).
  const b = ep.alloc(100);
  if (b._tag === 'Left') throw b.left;
  t.is(ep.trySendBuffer(me + 1, b.right, 100, 1n)._tag, 'Right');
  t.is(ep.closeDestination(me + 1), 1);
  t.is(p.stats().bytesUsed, 0);
  ep.close();
});

test('hub - an in-process sink registers like a socket; a closed link detaches its endpoints for reclaim', async (t) => {
  const detached: number[] = [];
  const hub = new Hub({ onDetach: (ep) => detached.push(ep) });
  const buf = new SharedArrayBuffer(4 << 20);
  const pool = Pool.format(buf);
  if (pool._tag === 'Left') throw pool.left;
  hub.attachPool('a', pool.right);
  const [hubSide1, epSide1] = linkPair();
  const [hubSide2, epSide2] = linkPair();
  t.is(hub.attach({ realm: 'a', endpoint: 1 }, hubSide1)._tag, 'Right');
  t.is(hub.attach({ realm: 'a', endpoint: 2 }, hubSide2)._tag, 'Right');
  const dup = hub.attach({ realm: 'a', endpoint: 2 }, hubSide1);
  t.regex(dup._tag === 'Left' ? dup.left.message : '', /already registered/);
  const wrongRealm = hub.attach({ realm: 'b', endpoint: 3 }, hubSide1);
  t.regex(wrongRealm._tag === 'Left' ? wrongRealm.left.message : '', /a host serves one realm/);
  const e1 = new Endpoint({ id: 1, pool: pool.right, link: epSide1, timers: realTimers });
  const e2 = new Endpoint({ id: 2, pool: pool.right, link: epSide2, timers: realTimers });
  const inbox: Message[] = [];
  e2.onMessage((m) => inbox.push(m));
  await e1.send(2, Buffer.from('in process'));
  await until(() => inbox.length === 1, 'delivered in process');
  t.is(text(inbox[0]!), 'in process');
  // e2 dies holding the buffer: its link closes, the hub detaches it, the node manager reclaims.
  e2.close();
  t.deepEqual(detached, [2]);
  t.deepEqual(pool.right.reclaim(2), { buffers: 1, bytes: 256 });
  t.is(pool.right.stats().bytesUsed, 0);
  e1.close();
  hub.close();
});
