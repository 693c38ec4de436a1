import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as D from '../src/datapath/descriptor.js';
import * as frames from '../src/datapath/frames.js';
import { bpf, nativeStatus } from '../src/native/index.js';

const POOL_BYTES = 1 << 20;

/** The header's #defines (SIGMA_*) with plain numeric values; anything else fails loudly. */
function headerDefines(): Map<string, number> {
  const text = readFileSync(fileURLToPath(new URL('../../bpf/sigma_datapath.h', import.meta.url)), 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(SIGMA_\w+)\s+(.+?)\s*(?:\/\*.*)?$/gm)) {
    const [, name, raw] = m as unknown as [string, string, string];
    if (name === 'SIGMA_DATAPATH_H' || name === 'SIGMA_STATIC_ASSERT') continue;
    const literal = /^(0x[0-9a-fA-F]+|\d+)u?$/.exec(raw);
    if (literal === null) throw new Error(`${name} = ${raw}: keep the header's constants plain literals so they can be mirrored`);
    out.set(name, Number(literal[1]));
  }
  return out;
}

/** Every header constant and its TS mirror: a header constant without a mirror fails the test. */
const MIRROR: Record<string, number> = {
  SIGMA_DESC_SIZE: D.DESC_SIZE,
  SIGMA_DESC_DST_EP: D.DESC_OFFSETS.dstEp,
  SIGMA_DESC_SRC_EP: D.DESC_OFFSETS.srcEp,
  SIGMA_DESC_OFFSET: D.DESC_OFFSETS.offset,
  SIGMA_DESC_LENGTH: D.DESC_OFFSETS.length,
  SIGMA_DESC_GENERATION: D.DESC_OFFSETS.generation,
  SIGMA_DESC_FLAGS: D.DESC_OFFSETS.flags,
  SIGMA_DESC_REQUEST_ID: D.DESC_OFFSETS.requestId,
  SIGMA_DESC_HEAD_SIZE: D.DESC_HEAD_SIZE,
  SIGMA_WRITE_BYTES_MAX: D.WRITE_BYTES_MAX,
  SIGMA_NO_EP: D.NO_EP,
  SIGMA_HUB_EP: D.HUB_EP,
  SIGMA_SYSTEM_REALM: D.SYSTEM_REALM,
  SIGMA_F_CREDIT: D.F_CREDIT,
  SIGMA_F_SENDER_MASK: D.F_SENDER_MASK,
  SIGMA_F_KERNEL_MASK: D.F_KERNEL_MASK,
  SIGMA_F_COPY: D.F_COPY,
  SIGMA_F_REJECTED: D.F_REJECTED,
  SIGMA_REASON_SHIFT: D.REASON_SHIFT,
  SIGMA_REASON_MASK: D.REASON_MASK,
  SIGMA_R_NONE: D.R_NONE,
  SIGMA_R_NO_IDENTITY: D.R_NO_IDENTITY,
  SIGMA_R_SRC_SPOOFED: D.R_SRC_SPOOFED,
  SIGMA_R_CROSS_REALM: D.R_CROSS_REALM,
  SIGMA_R_UNKNOWN_DST: D.R_UNKNOWN_DST,
  SIGMA_R_DST_GONE: D.R_DST_GONE,
  SIGMA_R_MAX: D.R_MAX,
  SIGMA_ENDPOINTS_MAX: D.ENDPOINTS_MAX,
};

test('descriptor - every #define in bpf/sigma_datapath.h equals its TypeScript mirror', (t) => {
  const defines = headerDefines();
  t.deepEqual([...defines.keys()].sort(), Object.keys(MIRROR).sort(), 'a constant was added or removed on one side only');
  for (const [name, value] of defines) t.is(MIRROR[name], value, name);
});

(nativeStatus().available ? test : test.skip)('descriptor - the compiled addon sees the same constants and struct sizes as the mirror', (t) => {
  const c = bpf.headerConstants();
  for (const [name, value] of Object.entries(MIRROR)) t.is(c[name], value, name);
  t.like(c, { sizeofIdentity: 8, sizeofEpInfo: 8, sizeofExportKey: 8, sizeofMetrics: 24 });
});

test('descriptor - frames.ts uses the same offsets and credit flag', (t) => {
  t.is(frames.FRAME_BYTES, D.DESC_SIZE);
  t.deepEqual([frames.F_DST, frames.F_SRC, frames.F_OFFSET, frames.F_LENGTH, frames.F_GENERATION, frames.F_FLAGS, frames.F_REQUEST_ID], Object.values(D.DESC_OFFSETS));
  t.is(frames.FLAG_CREDIT, D.F_CREDIT);
});

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const validDescriptor = fc
  .record({
    dstEp: u32,
    srcEp: u32,
    offset: fc.integer({ min: 0, max: POOL_BYTES - 1 }),
    length: fc.integer({ min: 1, max: POOL_BYTES }),
    generation: u32,
    kernel: fc.constantFrom(0, D.F_COPY, ...[1, 2, 3, 4, 5].map((r) => (D.F_REJECTED | (r << D.REASON_SHIFT)) >>> 0)),
    credit: fc.boolean(),
    requestId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  })
  .map(({ kernel, credit, ...d }) => ({ ...d, length: credit ? d.length : Math.min(d.length, POOL_BYTES - d.offset), flags: (kernel | (credit ? D.F_CREDIT : 0)) >>> 0 }));

test('descriptor - encode then decode gives the same descriptor back', (t) => {
  fc.assert(
    fc.property(validDescriptor, fc.integer({ min: 0, max: 3 }), (d, slot) => {
      const buf = Buffer.alloc(D.DESC_SIZE * 4);
      frames.encodeFrame(d, buf, slot * D.DESC_SIZE);
      const back = frames.decodeFrameChecked(buf, slot * D.DESC_SIZE, POOL_BYTES);
      if (back._tag === 'Left') throw back.left;
      const got: D.Descriptor = back.right;
      return (Object.keys(D.DESC_OFFSETS) as (keyof D.Descriptor)[]).every((k) => got[k] === d[k]);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('descriptor - decoding any 32 bytes never throws: a Left, or a descriptor that keeps every rule', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 1 << 30 }), (bytes, poolBytes) => {
      const r = frames.decodeFrameChecked(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 0, poolBytes);
      if (r._tag === 'Left') return r.left instanceof D.DescriptorError;
      const d = r.right;
      const reason = (d.flags & D.REASON_MASK) >>> D.REASON_SHIFT;
      return (
        (d.flags & ~D.KNOWN_FLAGS) === 0 &&
        d.length > 0 &&
        ((d.flags & D.F_CREDIT) !== 0 || d.offset + d.length <= poolBytes) &&
        ((d.flags & D.F_REJECTED) !== 0) === (reason !== 0) &&
        (D.rejectReason(d.flags) !== undefined) === ((d.flags & D.F_REJECTED) !== 0)
      );
    }),
    { numRuns: 20_000 },
  );
  t.pass();
});

test('descriptor - each rule has its own fault', (t) => {
  const at = (d: Partial<D.Descriptor>, poolBytes = 4096): D.DescriptorFault | 'ok' => {
    const buf = frames.encodeFrame({ dstEp: 2, srcEp: 3, offset: 0, length: 64, generation: 1, flags: 0, requestId: 7n, ...d });
    const r = frames.decodeFrameChecked(buf, 0, poolBytes);
    return r._tag === 'Left' ? r.left.fault : 'ok';
  };
  t.is(at({}), 'ok');
  t.is(at({ length: 0 }), 'zero-length');
  t.is(at({ offset: 4090, length: 7 }), 'out-of-bounds');
  t.is(at({ offset: 4090, length: 6 }), 'ok');
  t.is(at({ offset: 999_999, length: 5, flags: D.F_CREDIT }), 'ok', 'a credit return names no buffer');
  t.is(at({ flags: 0x2 }), 'unknown-flags');
  t.is(at({ flags: 0x0100_0000 }), 'bad-reason', 'a reason without F_REJECTED');
  t.is(at({ flags: D.F_REJECTED >>> 0 }), 'bad-reason', 'F_REJECTED without a reason');
  t.is(at({ flags: (D.F_REJECTED | (6 << D.REASON_SHIFT)) >>> 0 }), 'bad-reason');
  t.is(at({ flags: (D.F_REJECTED | D.F_COPY | (1 << D.REASON_SHIFT)) >>> 0 }), 'bad-reason');
  t.is(D.rejectReason((D.F_REJECTED | (D.R_CROSS_REALM << D.REASON_SHIFT)) >>> 0), 'cross-realm');
  t.is(D.rejectReason(D.F_COPY), undefined);
  const short = frames.decodeFrameChecked(Buffer.alloc(40), 16, 4096);
  t.is(short._tag === 'Left' ? short.left.fault : 'ok', 'short');
});

test('descriptor - the codec refuses fields outside their width instead of wrapping them', (t) => {
  const out = Buffer.alloc(D.DESC_SIZE);
  const base: D.Descriptor = { dstEp: 2, srcEp: 3, offset: 0, length: 1, generation: 1, flags: 0, requestId: 0n };
  t.throws(() => frames.encodeFrame({ ...base, dstEp: 2 ** 32 }, out), { instanceOf: D.DescriptorError, message: /dstEp/ });
  t.throws(() => frames.encodeFrame({ ...base, offset: -1 }, out), { instanceOf: D.DescriptorError });
  t.throws(() => frames.encodeFrame({ ...base, length: 1.5 }, out), { instanceOf: D.DescriptorError });
  t.throws(() => frames.encodeFrame({ ...base, flags: D.F_REJECTED | 0 }, out), { instanceOf: D.DescriptorError }, 'a flag word that went negative through | is refused');
  t.throws(() => frames.encodeFrame({ ...base, requestId: 1n << 64n }, out), { instanceOf: D.DescriptorError });
  t.throws(() => frames.encodeFrame({ ...base, requestId: -1n }, out), { instanceOf: D.DescriptorError });
  t.throws(() => frames.encodeFrame(base, out, 8), { instanceOf: D.DescriptorError, message: /no room/ });
  t.deepEqual(frames.decodeFrame(frames.encodeFrame({ ...base, dstEp: 0xffff_ffff, flags: D.F_REJECTED >>> 0 }, out)), { ...base, dstEp: 0xffff_ffff, flags: D.F_REJECTED >>> 0 });
});
