import { InvalidArgumentError } from './errors.js';

/**
 * Input checks at the port's boundary, shared by the real binding and the simulator so both refuse
 * the same things with the same errors (the server would refuse some later and less clearly).
 */

const WHITESPACE = /\s/;
const NAME = /^[-\w]+$/;
const KEY = /^[-/=.\w]+$/;
const KEY_FILTER = /^[-/=.\w*>]+$/;

function tokens(subject: string): string[] | undefined {
  if (subject.length === 0 || WHITESPACE.test(subject)) return undefined;
  const t = subject.split('.');
  return t.some((x) => x.length === 0) ? undefined : t;
}

/** A subject to publish to: dot-separated non-empty tokens, no wildcards, no whitespace. */
export function checkSubject(subject: string, what = 'subject'): void {
  const t = tokens(subject);
  if (t === undefined || t.includes('*') || t.includes('>')) {
    throw new InvalidArgumentError(`invalid ${what} "${subject}": use dot-separated non-empty tokens without spaces or wildcards, like "sigma.node.n1"`);
  }
}

/** A subject to subscribe to: like checkSubject, plus `*` for one token and `>` as the last token. */
export function checkFilter(filter: string, what = 'subject filter'): void {
  const t = tokens(filter);
  if (t === undefined || t.slice(0, -1).includes('>')) {
    throw new InvalidArgumentError(`invalid ${what} "${filter}": use dot-separated non-empty tokens, "*" for one token, ">" only at the end, like "sigma.procs.>"`);
  }
}

export function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw new InvalidArgumentError(`invalid ${what} "${name}": use letters, digits, "-" and "_" only`);
}

export function checkKey(key: string): void {
  if (!KEY.test(key) || key.startsWith('.') || key.endsWith('.') || key.includes('..')) {
    throw new InvalidArgumentError(`invalid KV key "${key}": use letters, digits and "-/_=." with no leading, trailing or double dot`);
  }
}

export function checkKeyFilter(filter: string): void {
  if (!KEY_FILTER.test(filter)) throw new InvalidArgumentError(`invalid KV key filter "${filter}": use a key, or one with "*" / ">" wildcards like "procs.>"`);
  checkFilter(filter, 'KV key filter');
}

export function checkPositiveInt(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`);
}

export function checkPositiveMs(value: number, what: string): void {
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`${what} must be a positive number of milliseconds, got ${value}`);
}

/** A revision (or sequence) the caller got from an earlier read or write. */
export function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new InvalidArgumentError(`a revision is a positive integer from a previous read or write, got ${revision}`);
}

/** NATS subject matching: `*` matches one token, `>` one or more trailing tokens. */
export function matches(filter: string, subject: string): boolean {
  if (filter === subject) return true;
  // Most filters are literal subjects: no need to split anything (the simulator routes every message).
  if (!filter.includes('*') && !filter.includes('>')) return false;
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}
