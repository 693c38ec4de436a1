import test from 'ava';
import { parseSpec, PROC_EXPORTS_MAX } from '../src/proc/spec.js';

test('spec exports: realm names other than its own, each once, bounded', (t) => {
  const ok = parseSpec({ program: 'echo', realm: 'b', name: 'shared', exports: ['a', 'c'] });
  t.deepEqual(ok._tag === 'Right' ? ok.right.exports : undefined, ['a', 'c']);
  const none = parseSpec({ program: 'echo' });
  t.is(none._tag === 'Right' ? none.right.exports : 'left', undefined, 'no exports: nothing is added to the spec');
  const bad = (exports: unknown): string => {
    const r = parseSpec({ program: 'echo', realm: 'b', exports });
    return r._tag === 'Left' ? `${r.left.field}: ${r.left.message}` : 'accepted';
  };
  t.regex(bad('a'), /^exports: .*array/);
  t.regex(bad(['A!']), /^exports: .*realm names/);
  t.regex(bad([7]), /^exports: .*realm names/);
  t.regex(bad(['b']), /^exports: .*own realm/);
  t.regex(bad(['a', 'a']), /^exports: .*twice/);
  t.regex(bad(Array.from({ length: PROC_EXPORTS_MAX + 1 }, (_, i) => `r${i}`)), /^exports: .*at most/);
});
