import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BPF_CONST, BpfDataPath, bpfStatus } from '../src/native/bpf.js';

const status = bpfStatus();
const maybe = status.available ? test.serial : test.serial.skip;

test('bpf - the TypeScript constants match bpf/sigma_datapath.h', (t) => {
  const h = readFileSync(fileURLToPath(new URL('../../bpf/sigma_datapath.h', import.meta.url)), 'utf8');
  const def = (name: string): number => {
    const m = new RegExp(`#define ${name}\\s+\\(?([^)\\n]+)\\)?`).exec(h);
    if (m === null) throw new Error(`${name} not in the header`);
    return Number(Function(`return (${m[1]!.replace(/u\b/g, '')}) >>> 0`)());
  };
  t.is(def('SIGMA_DESC_SIZE'), BPF_CONST.DESC_SIZE);
  t.is(def('SIGMA_HUB_EP'), BPF_CONST.HUB_EP);
  t.is(def('SIGMA_F_REJECTED'), BPF_CONST.F_REJECTED);
  t.is(def('SIGMA_R_NO_IDENTITY'), BPF_CONST.R_NO_IDENTITY);
  t.is(def('SIGMA_R_UNKNOWN_DST'), BPF_CONST.R_UNKNOWN_DST);
  t.is(def('SIGMA_R_CROSS_REALM'), BPF_CONST.R_CROSS_REALM);
});

interface Desc {
  dst: number;
  src: number;
  flags: number;
  requestId: number;
}

const desc = (d: Partial<Desc> & { dst: number }): Buffer => {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(d.dst, 0);
  b.writeUInt32LE(d.src ?? 0, 4);
  b.writeUInt32LE(d.flags ?? 0, 20);
  b.writeBigUInt64LE(BigInt(d.requestId ?? 0), 24);
  return b;
};

/** A socket's received descriptors, in order, awaited one by one. */
function inbox(sock: Socket) {
  let buf = Buffer.alloc(0);
  const got: Desc[] = [];
  const waiters: Array<() => void> = [];
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 32) {
      got.push({ dst: buf.readUInt32LE(0), src: buf.readUInt32LE(4), flags: buf.readUInt32LE(20), requestId: Number(buf.readBigUInt64LE(24)) });
      buf = buf.subarray(32);
    }
    for (const w of waiters.splice(0)) w();
  });
  return {
    async next(): Promise<Desc> {
      while (got.length === 0) await new Promise<void>((r) => waiters.push(r));
      return got.shift()!;
    },
    get pending(): number {
      return got.length;
    },
  };
}

let sink: Server;
const held: Socket[] = [];
async function endpointSocket(): Promise<Socket> {
  const s = connect((sink.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

test.before(async () => {
  // The peer every endpoint socket is connected to: it accepts and never reads (SPRIGHT's trick).
  sink = createServer((c) => {
    c.pause();
    held.push(c);
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
});
test.after.always(() => {
  for (const s of held) s.destroy();
  sink.close();
});

maybe('bpf - descriptors are redirected in the kernel, stamped with the true sender, and policed by realm', async (t) => {
  const dp = BpfDataPath.load();
  const [a, b, c, hub] = await Promise.all([endpointSocket(), endpointSocket(), endpointSocket(), endpointSocket()]);
  try {
    const inB = inbox(b);
    const inHub = inbox(hub);
    dp.register(hub, BPF_CONST.SYSTEM_REALM, BPF_CONST.HUB_EP);
    dp.register(a, 1, 10);
    dp.register(b, 1, 11);
    dp.register(c, 2, 20);

    // Same realm, with a forged source: delivered, and the kernel wrote the true source.
    a.write(desc({ dst: 11, src: 999, requestId: 1 }));
    t.like(await inB.next(), { dst: 11, src: 10, requestId: 1, flags: 0 });

    // Another realm: diverted to the hub with the reason; B gets nothing (the next thing B sees is #3).
    c.write(desc({ dst: 11, requestId: 2 }));
    const rejected = await inHub.next();
    t.is(rejected.requestId, 2);
    t.is(rejected.src, 20);
    t.is(rejected.flags, (BPF_CONST.F_REJECTED | BPF_CONST.R_CROSS_REALM) >>> 0);
    a.write(desc({ dst: 11, requestId: 3 }));
    t.is((await inB.next()).requestId, 3);

    // Unknown destination: the hub again. And the sender still works afterwards (no SK_DROP, no EACCES).
    a.write(desc({ dst: 4242, requestId: 4 }));
    t.is((await inHub.next()).flags, (BPF_CONST.F_REJECTED | BPF_CONST.R_UNKNOWN_DST) >>> 0);

    // Exported across realms: delivered.
    dp.exportTo(2, 11);
    c.write(desc({ dst: 11, requestId: 5 }));
    t.like(await inB.next(), { src: 20, requestId: 5 });

    // One coalesced write of three descriptors: one verdict each.
    a.cork();
    a.write(desc({ dst: 11, requestId: 6 }));
    a.write(desc({ dst: 4242, requestId: 7 }));
    a.write(desc({ dst: 11, requestId: 8 }));
    a.uncork();
    t.is((await inB.next()).requestId, 6);
    t.is((await inB.next()).requestId, 8);
    t.is((await inHub.next()).requestId, 7);

    const ma = dp.metrics(10);
    const mc = dp.metrics(20);
    t.is(ma.msgs, 6);
    t.is(ma.rejects, 2);
    t.is(mc.rejects, 1);
    t.is(ma.bytes, 6 * 32);
  } finally {
    for (const s of [a, b, c, hub]) s.destroy();
    dp.close();
  }
});

maybe('bpf - without privileges, loading fails with a typed EPERM, not a crash', async (t) => {
  const run = promisify(execFile);
  const mod = new URL('../src/native/bpf.js', import.meta.url).href;
  const script = `import(${JSON.stringify(mod)}).then((m) => { try { m.BpfDataPath.load(); console.log('loaded'); } catch (e) { console.log(e.name + ' ' + e.code); } })`;
  const { stdout } = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '--input-type=module', '-e', script]);
  t.is(stdout.trim(), 'NativeError EPERM');
});
