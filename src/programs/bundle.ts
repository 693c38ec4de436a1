/**
 * A program as it is shipped: the author's module and its npm dependencies bundled by esbuild into one
 * ES module, `sigma-ts` left out (the host supplies it, so the classes a program extends are the host's
 * own), checked at deploy time for a default export extending FunctionProc or ServiceProc, and named by
 * the SHA-256 of its bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, stop, type Message, type Plugin } from 'esbuild';
import { FunctionProc, ServiceProc, type ProcKind } from '../proc/types.js';
import { DeployError } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';
import { typeCheck } from './typecheck.js';

/** A bundle larger than this is refused at deploy: programs are code, data belongs elsewhere. */
export const PROGRAM_BYTES_MAX = 8 * 1024 * 1024;
/** Entries tried in a directory without a package.json `main`. */
const DIR_ENTRIES = ['index.ts', 'index.js', 'index.mjs', 'src/index.ts', 'src/index.js'];
/** ESM output has no `require`; CommonJS dependencies inside the bundle need one for Node's modules. */
const REQUIRE_BANNER = "import { createRequire as __sigmaCreateRequire } from 'node:module'; const require = __sigmaCreateRequire(import.meta.url);";
/** Program and realm names: one NATS token, so that `<realm>.<name>` keys never collide. */
export const PROGRAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface Bundle {
  code: Uint8Array;
  /** SHA-256 of `code`, hex: the name of the object in the store and of the file in each node's cache. */
  hash: string;
  kind: ProcKind;
  /** The name the program gets when the deployer gives none (the file's, or the package's). */
  defaultName: string;
}

export const hashOf = (code: Uint8Array): string => createHash('sha256').update(code).digest('hex');
export const isHash = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);

/** The module to bundle for a path (a file, or a directory with a package.json main or an index), and the default name. */
export function entryOf(path: string): { entry: string; name: string } {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new DeployError('no-entry', `${path}: no such file or directory`);
  if (statSync(abs).isFile()) return { entry: abs, name: basename(abs, extname(abs)) };
  let name = basename(abs);
  const pkgFile = join(abs, 'package.json');
  if (existsSync(pkgFile)) {
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { name?: string; main?: string };
    if (typeof pkg.name === 'string') name = pkg.name.replace(/^@[^/]+\//, '');
    if (typeof pkg.main === 'string' && existsSync(join(abs, pkg.main))) return { entry: join(abs, pkg.main), name };
  }
  const found = DIR_ENTRIES.map((e) => join(abs, e)).find((e) => existsSync(e));
  if (found === undefined) throw new DeployError('no-entry', `${path}: a directory without a package.json "main" or any of ${DIR_ENTRIES.join(', ')}`);
  return { entry: found, name };
}

const OWN_BUILD = join(PACKAGE_ROOT, 'dist', 'src') + sep;
/**
 * A module inside this package's own build (a program in this repository importing
 * `../../src/proc/types.js`, as cluster.config.ts programs and tests do) stays an import of that file:
 * bundled in, it would be a second FunctionProc the host does not know. Such a bundle runs where this
 * build is at the same path (every node of a local cluster); applications import `sigma-ts` instead.
 */
const ownBuildExternal: Plugin = {
  name: 'sigma-own-build',
  setup(b) {
    b.onResolve({ filter: /^[./]/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const abs = isAbsolute(args.path) ? args.path : resolve(args.resolveDir, args.path);
      return abs.startsWith(OWN_BUILD) ? { path: abs, external: true } : undefined;
    });
  },
};

const where = (m: Message): string => (m.location === null ? '' : `${m.location.file}:${m.location.line}:${m.location.column + 1}: `);

/** Bundles and checks `path`; every refusal is a DeployError. */
export async function bundleProgram(path: string, o: { typeCheck?: boolean } = {}): Promise<Bundle> {
  const { entry, name } = entryOf(path);
  // The compiler runs beside the bundling and the load check; a syntax error is reported as esbuild's.
  const typed = o.typeCheck === false ? Promise.resolve(undefined) : typeCheck(entry, path).then(() => undefined, (e: unknown) => e);
  let code: Uint8Array;
  try {
    const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', target: 'node20', write: false, logLevel: 'silent', external: ['sigma-ts', 'sigma-ts/*'], plugins: [ownBuildExternal], banner: { js: REQUIRE_BANNER }, legalComments: 'none' });
    code = out.outputFiles[0]!.contents;
  } catch (e) {
    const errors = (e as { errors?: Message[] }).errors ?? [];
    const text = errors.length === 0 ? (e as Error).message : errors.map((m) => `${where(m)}${m.text}`).join('\n');
    throw new DeployError('syntax', `${path} does not compile:\n${text}`);
  }
  if (code.length > PROGRAM_BYTES_MAX) throw new DeployError('too-large', `${path} bundles to ${code.length} bytes, over the limit of ${PROGRAM_BYTES_MAX}; keep data out of the program`);
  const kind = await checkedKind(code, path);
  const typeError = await typed;
  if (typeError !== undefined) throw typeError;
  return { code, hash: hashOf(code), kind, defaultName: name };
}

/**
 * Loads the bundle in this process (it is the deployer's own code), resolving `sigma-ts` to this
 * package, and says which kind of proc its default export is.
 */
export async function checkedKind(code: Uint8Array, path: string): Promise<ProcKind> {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-deploy-'));
  try {
    linkSdk(dir);
    const file = join(dir, 'program.mjs');
    writeFileSync(file, code);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (e) {
      throw new DeployError('load', `${path} failed while loading: ${(e as Error).message}`);
    }
    const Cls = mod.default;
    if (typeof Cls === 'function' && Cls.prototype instanceof FunctionProc) return 'function';
    if (typeof Cls === 'function' && Cls.prototype instanceof ServiceProc) return 'service';
    const what = Cls === undefined ? 'has no default export' : `default-exports ${typeof Cls === 'function' ? `class ${Cls.name || '(anonymous)'}` : typeof Cls}`;
    throw new DeployError('not-a-proc', `${path} ${what}; a program default-exports a class extending FunctionProc or ServiceProc from 'sigma-ts'`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Stops esbuild's service process (the next bundle starts another): a long-lived process that deployed
 * once (the launcher) would otherwise keep it, and it wakes tens of times a second while idle.
 */
export const stopBundler = (): Promise<void> => stop();

/** `<dir>/node_modules/sigma-ts` -> this package: how bundles below `dir` find the SDK. */
export function linkSdk(dir: string): void {
  const nm = join(dir, 'node_modules');
  const link = join(nm, 'sigma-ts');
  if (existsSync(link)) return;
  mkdirSync(nm, { recursive: true, mode: 0o755 });
  try {
    symlinkSync(PACKAGE_ROOT, link, 'dir');
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  }
}
