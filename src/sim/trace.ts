import { createHash, type Hash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A run's trace: one JSON array per line, `[virtual ms, kind, ...fields]`, preceded by a header that
 * names the run (scenario, seed, mutant, fault schedule) so `npm run sim -- replay <file>` can run it
 * again. The hash covers every event line, so equal hashes mean equal runs. Given the lines of an
 * earlier run, the trace compares as it goes and keeps the first divergence.
 */
export type TraceLine = [number, string, ...Array<string | number | boolean | null>];

export interface TraceHeader {
  scenario: string;
  seed: number;
  mutant: string | null;
  faults: unknown[];
}

export interface Divergence {
  line: number;
  expected: string | undefined;
  got: string | undefined;
}

/** Lines held in memory per run; past it the hash still covers everything but the file is cut short. */
export const TRACE_LINES_MAX = 200_000;
const HASH_CHUNK_LINES = 512;

export class Trace {
  readonly lines: string[] = [];
  #count = 0;
  readonly #hash: Hash = createHash('sha256');
  #divergence: Divergence | undefined;
  truncated = false;
  readonly #pending: string[] = [];

  constructor(
    private readonly now: () => number,
    private readonly expected?: readonly string[],
  ) {}

  add(kind: string, ...fields: Array<string | number | boolean | null>): void {
    const line = JSON.stringify([Math.round(this.now() * 1000) / 1000, kind, ...fields]);
    // Hashed in chunks: one update per line costs more than the line (the bytes hashed are the same).
    this.#pending.push(line);
    if (this.#pending.length >= HASH_CHUNK_LINES) this.#flush();
    if (this.expected !== undefined && this.#divergence === undefined && this.expected[this.#count] !== line) {
      this.#divergence = { line: this.#count + 1, expected: this.expected[this.#count], got: line };
    }
    this.#count++;
    if (this.lines.length < TRACE_LINES_MAX) this.lines.push(line);
    else this.truncated = true;
  }

  get count(): number {
    return this.#count;
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    this.#hash.update(this.#pending.join('\n') + '\n');
    this.#pending.length = 0;
  }

  /** Ends the trace; a replay that produced fewer lines than expected diverges where it stopped. */
  finish(): string {
    this.#flush();
    if (this.expected !== undefined && this.#divergence === undefined && this.expected.length !== this.#count) {
      this.#divergence = { line: this.#count + 1, expected: this.expected[this.#count], got: undefined };
    }
    return this.#hash.digest('hex');
  }

  get divergence(): Divergence | undefined {
    return this.#divergence;
  }
}

export function writeTrace(file: string, header: TraceHeader, trace: Trace, hash: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const head = JSON.stringify({ ...header, hash, lines: trace.count, truncated: trace.truncated });
  writeFileSync(file, `${head}\n${trace.lines.join('\n')}\n`);
}

export class TraceFileError extends Error {
  readonly type = 'trace-file';
  constructor(file: string, detail: string) {
    super(`trace ${file}: ${detail}`);
    this.name = 'TraceFileError';
  }
}

export function readTrace(file: string): { header: TraceHeader & { hash: string; truncated: boolean }; lines: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TraceFileError(file, (e as Error).message);
  }
  const [first, ...rest] = text.split('\n');
  let header: TraceHeader & { hash: string; truncated: boolean };
  try {
    header = JSON.parse(first ?? '') as typeof header;
  } catch {
    throw new TraceFileError(file, 'the first line is not a JSON header; was it written by npm run sim?');
  }
  if (typeof header.scenario !== 'string' || !Number.isInteger(header.seed) || !Array.isArray(header.faults)) throw new TraceFileError(file, 'the header lacks scenario, seed or faults');
  return { header, lines: rest.filter((l) => l.length > 0) };
}
