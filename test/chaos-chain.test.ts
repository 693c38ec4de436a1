import test from 'ava';
import { chainAnswer, describeErrors, judgeCalls, type ChainCall } from '../src/chaos/chain-calls.js';

// How the datapath chaos scenario judges the calls it recorded (the scenario itself: test/chaos.test.ts).
const FAULT = { killMs: 10_000, faultEndMs: 20_000, boundMs: 4_000 };
const ok = (payload: string, startMs = 0, endMs = 5): ChainCall => ({ caller: 0, payload, startMs, endMs, answer: chainAnswer(payload) });
const failed = (type: string, message: string, startMs = 0, endMs = 5): ChainCall => ({ caller: 1, payload: 'c1s0', startMs, endMs, error: { type, message } });

test('chaos chain - the answer is every byte plus one per stage', (t) => {
  t.is(chainAnswer('c0s1z'), 'f3v4}');
});

test('chaos chain - right answers and typed errors within their bound are no violation; errors are counted by type', (t) => {
  const calls = [ok('c0s0'), failed('peer-gone', 'node m2 went away'), failed('peer-gone', 'node m2 went away'), failed('remote-handler', 'peer-unreachable')];
  const j = judgeCalls(calls, FAULT);
  t.deepEqual(j.violations, []);
  t.deepEqual(j.errors, { 'peer-gone': 2, 'remote-handler': 1 });
});

test('chaos chain - a wrong answer, an untyped error, a call past its bound are each a violation', (t) => {
  const wrong: ChainCall = { caller: 2, payload: 'c2s0', startMs: 0, endMs: 5, answer: 'c2s0' };
  const j = judgeCalls([wrong, failed('internal', 'TypeError: x is undefined'), ok('c0s1', 0, 4_001)], FAULT);
  t.is(j.violations.length, 3);
  t.regex(j.violations[0]!, /wrong answer "c2s0", not "f5v3"/);
  t.regex(j.violations[1]!, /untyped error internal/);
  t.regex(j.violations[2]!, /4001 ms, over its 4000 ms bound \(answered\)/);
});

test('chaos chain - a node that did not answer is allowed during the fault only', (t) => {
  const unanswered = (startMs: number, endMs: number): ChainCall => failed('node-unreachable', 'node m1 did not answer (timeout)', startMs, endMs);
  const j = judgeCalls([unanswered(7_000, 9_999), unanswered(9_000, 12_000), unanswered(19_000, 22_000), unanswered(20_001, 23_000), failed('node-unreachable', 'node m1 did not answer (no-responders)', 25_000, 25_001)], FAULT);
  t.is(j.violations.length, 2, j.violations.join('\n'));
  t.regex(j.violations[0]!, /hung outside the fault/);
  t.regex(j.violations[1]!, /hung outside the fault/);
  t.is(j.errors['node-unreachable'], 5);
});

test('chaos chain - errors are described by type with the longest call and the first and last message', (t) => {
  const lines = describeErrors([failed('peer-gone', 'first', 0, 30), ok('c0s0'), failed('peer-gone', 'last', 0, 10), failed('call-timeout', 'only', 0, 2_000)]);
  t.deepEqual(lines, ['peer-gone 2 (up to 30 ms; first: first; last: last)', 'call-timeout 1 (up to 2000 ms; first: only)']);
});
