/**
 * TypeScript is type-checked at deploy: esbuild strips types without checking them, and a type error
 * found at spawn time would be found on a node, by a proc, too late. The project's own compiler and
 * tsconfig.json are used when it has them (they are what its author builds with), else this package's
 * compiler with strict defaults on the entry alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';
import { DeployError } from './errors.js';

const TS_ENTRY = /\.(m|c)?tsx?$/;
/** A compiler still running after this long is stopped and the deploy refused (its output says where it was). */
const TYPE_CHECK_TIMEOUT_MS = 120_000;
/** Compiler diagnostics quoted in the refusal; the rest are counted. */
const DIAGNOSTIC_LINES_MAX = 40;
const OUTPUT_BYTES_MAX = 4 * 1024 * 1024;
/** Without a tsconfig.json: what `sigma new` writes, so that a program checks alike with and without one. */
const DEFAULT_OPTIONS = ['--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck'];

/** The nearest tsconfig.json from the entry's directory up to its package's root (the directory with package.json). */
function tsconfigOf(entry: string): string | undefined {
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'tsconfig.json'))) return join(dir, 'tsconfig.json');
    if (existsSync(join(dir, 'package.json')) || dirname(dir) === dir) return undefined;
  }
}

/** `pkg/<file>` as resolved from `from`'s directory, or undefined when it is not installed there. */
function resolveFrom(from: string, pkg: string, file: string): string | undefined {
  try {
    const found = join(dirname(createRequire(from).resolve(`${pkg}/package.json`)), file);
    return existsSync(found) ? found : undefined;
  } catch {
    return undefined;
  }
}

/** The compiler's arguments for `entry`: its project, or the entry alone with the defaults and Node's types. */
function argsFor(entry: string): string[] {
  const common = ['--noEmit', '--pretty', 'false'];
  const tsconfig = tsconfigOf(entry);
  if (tsconfig !== undefined) return ['-p', tsconfig, ...common];
  const ownTypes = resolveFrom(entry, '@types/node', 'index.d.ts') !== undefined;
  const nodeTypes = ownTypes ? ['--types', 'node'] : existsSync(join(PACKAGE_ROOT, 'node_modules', '@types', 'node')) ? ['--typeRoots', join(PACKAGE_ROOT, 'node_modules', '@types'), '--types', 'node'] : [];
  return [...common, ...DEFAULT_OPTIONS, ...nodeTypes, entry];
}

/**
 * The compiler as a command: TypeScript 7's native binary when the package has one for this platform
 * (its `bin/tsc` is a Node script that only starts it: ~0.15 s of a deploy), else `node bin/tsc`.
 */
function compilerOf(entry: string): [string, ...string[]] | undefined {
  for (const from of [entry, join(PACKAGE_ROOT, 'package.json')]) {
    const script = resolveFrom(from, 'typescript', join('bin', 'tsc'));
    if (script === undefined) continue;
    const native = resolveFrom(script, `@typescript/typescript-${process.platform}-${process.arch}`, join('lib', 'tsc'));
    return native === undefined ? [process.execPath, script] : [native];
  }
  return undefined;
}

/** Refuses (DeployError 'type', with the compiler's diagnostics) a TypeScript program that does not type-check. */
export async function typeCheck(entry: string, path: string): Promise<void> {
  if (!TS_ENTRY.test(entry)) return;
  const compiler = compilerOf(entry);
  if (compiler === undefined) throw new DeployError('type', `${path}: no TypeScript compiler to check it with (npm install typescript in its project)`);
  const [command, ...pre] = compiler;
  const out = await new Promise<{ failed: boolean; text: string }>((resolve) => {
    execFile(command, [...pre, ...argsFor(entry)], { cwd: dirname(entry), timeout: TYPE_CHECK_TIMEOUT_MS, maxBuffer: OUTPUT_BYTES_MAX, encoding: 'utf8' }, (e, stdout, stderr) =>
      resolve({ failed: e !== null, text: `${stdout}${stderr}`.trim() || (e?.message ?? '') }),
    );
  });
  if (!out.failed) return;
  const lines = out.text.split('\n');
  const more = lines.length > DIAGNOSTIC_LINES_MAX ? `\n... and ${lines.length - DIAGNOSTIC_LINES_MAX} more lines` : '';
  throw new DeployError('type', `${path} does not type-check:\n${lines.slice(0, DIAGNOSTIC_LINES_MAX).join('\n')}${more}`);
}
