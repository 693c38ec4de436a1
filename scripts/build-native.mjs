// Builds the kernel-facing artifacts: the BPF objects (bpf/*.bpf.c -> build/bpf/*.bpf.o, clang -target
// bpf) and the native addon (src/native -> src/native/build/Release/sigma_native.node, node-gyp as npm
// ships it, against the local Node headers: nothing is downloaded). Each artifact is skipped when it is
// newer than all its inputs, so a no-op run costs a few stat calls. Plain Node, no npm dependencies: the
// bootstrap runs it before anything else is guaranteed to exist.
//
//   export async function buildNative({ force, log }) -> { status: 'skip' | 'built' | 'failed', built, errors, error?, missing? }
//   node scripts/build-native.mjs [--force]      (exit 1 when something failed)
//
// A missing toolchain is not an exception: the result names what is missing and the apt-get line.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BPF_DIR = join(ROOT, 'bpf');
const BPF_OUT = join(ROOT, 'build', 'bpf');
const NATIVE_DIR = join(ROOT, 'src', 'native');
const ADDON = join(NATIVE_DIR, 'build', 'Release', 'sigma_native.node');
const SANDBOX_SRC = join(NATIVE_DIR, 'sandbox', 'sigma-sandbox.c');
const SANDBOX = join(ROOT, 'build', 'sigma-sandbox');
const STDERR_TAIL_CHARS = 3000;

const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu', riscv64: 'riscv64-linux-gnu' }[process.arch] ?? `${process.arch}-linux-gnu`;
const LIBDIRS = [`/usr/lib/${MULTIARCH}`, '/usr/lib64', '/usr/lib'];

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : -1);
const newest = (paths) => Math.max(-1, ...paths.map(mtime));
const filesIn = (dir, re) => (existsSync(dir) ? readdirSync(dir).filter((f) => re.test(f)).map((f) => join(dir, f)) : []);
const onPath = (cmd) => (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, cmd)));
const hasLib = (name) => LIBDIRS.some((d) => existsSync(join(d, `lib${name}.so`)));
const tail = (e) => String(e.stderr?.length ? e.stderr : e.message).slice(-STDERR_TAIL_CHARS).trim();

/** What a build needs, as [present?, apt package, what it is]. */
function missingFor(kind) {
  const needs = {
    bpf: [
      [onPath('clang'), 'clang', 'clang (compiles BPF)'],
      [existsSync('/usr/include/bpf/bpf_helpers.h'), 'libbpf-dev', 'libbpf headers'],
      [existsSync(`/usr/include/${MULTIARCH}/asm/types.h`) || existsSync('/usr/include/asm/types.h'), 'linux-libc-dev', 'kernel uapi headers (asm/)'],
    ],
    addon: [
      [onPath('make'), 'make', 'make'],
      [onPath('g++'), 'g++', 'a C++ compiler'],
      [onPath('python3'), 'python3', 'python3 (node-gyp runs on it)'],
      [existsSync('/usr/include/bpf/libbpf.h') && hasLib('bpf'), 'libbpf-dev', 'libbpf'],
      [hasLib('elf'), 'libelf-dev', 'libelf'],
      [hasLib('z'), 'zlib1g-dev', 'zlib'],
    ],
    sandbox: [
      [onPath('cc'), 'gcc', 'a C compiler'],
      [existsSync('/usr/include/seccomp.h') && hasLib('seccomp'), 'libseccomp-dev', 'libseccomp'],
    ],
  }[kind];
  return needs.filter(([ok]) => !ok).map(([, pkg, what]) => ({ pkg, what }));
}

function missingError(kind, missing) {
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  const what = { bpf: 'BPF objects', addon: 'native addon', sandbox: 'proc host sandbox (build/sigma-sandbox)' }[kind];
  return `cannot build the ${what}: missing ${missing.map((m) => m.what).join(', ')}; install with: sudo apt-get install -y ${pkgs.join(' ')}`;
}

function buildBpf({ force, log }) {
  const headers = filesIn(BPF_DIR, /\.h$/);
  const sources = filesIn(BPF_DIR, /\.bpf\.c$/);
  const stale = sources.filter((src) => {
    const out = join(BPF_OUT, src.slice(BPF_DIR.length + 1).replace(/\.c$/, '.o'));
    return force || mtime(out) < newest([src, ...headers]);
  });
  if (stale.length === 0) return { built: [], errors: [], missing: [] };
  const missing = missingFor('bpf');
  if (missing.length > 0) return { built: [], errors: [missingError('bpf', missing)], missing };
  mkdirSync(BPF_OUT, { recursive: true });
  const built = [];
  const errors = [];
  for (const src of stale) {
    const name = src.slice(BPF_DIR.length + 1).replace(/\.c$/, '.o');
    const out = join(BPF_OUT, name);
    const tmp = `${out}.tmp-${process.pid}`; // renamed into place only when complete: a failed compile never looks fresh
    log(`compiling bpf/${name.replace(/\.o$/, '.c')}`);
    try {
      execFileSync('clang', ['-O2', '-g', '-Wall', '-target', 'bpf', `-I/usr/include/${MULTIARCH}`, `-I${BPF_DIR}`, '-c', src, '-o', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(tmp, out);
      built.push(`build/bpf/${name}`);
    } catch (e) {
      rmSync(tmp, { force: true });
      errors.push(`clang failed on bpf/${name.replace(/\.o$/, '.c')}: ${tail(e)}`);
    }
  }
  return { built, errors, missing: [] };
}

/** npm's own node-gyp: next to this node, or wherever `npm` on PATH lives. */
function findNodeGyp() {
  const rel = join('lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const prefixes = [join(dirname(process.execPath), '..')];
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d !== '' && existsSync(join(d, 'npm'))) prefixes.push(join(d, '..'));
  prefixes.push('/usr', '/usr/local');
  return prefixes.map((p) => join(p, rel)).find((p) => existsSync(p));
}

/** A Node install dir with headers (<dir>/include/node/node_api.h), so node-gyp never downloads them. */
function findNodeDir() {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..'), '/usr', '/usr/local'].filter(Boolean);
  return candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
}

function buildAddon({ force, log }) {
  const inputs = [...filesIn(NATIVE_DIR, /\.(cc|h|gyp)$/), ...filesIn(BPF_DIR, /\.h$/)];
  if (!force && mtime(ADDON) >= newest(inputs)) return { built: [], errors: [], missing: [] };
  const missing = missingFor('addon');
  if (missing.length > 0) return { built: [], errors: [missingError('addon', missing)], missing };
  const gyp = findNodeGyp();
  if (gyp === undefined) return { built: [], errors: ['cannot build the native addon: node-gyp not found (it ships with npm: install npm, e.g. sudo apt-get install -y npm)'], missing: [{ pkg: 'npm', what: 'node-gyp' }] };
  const nodedir = findNodeDir();
  if (nodedir === undefined) {
    return { built: [], errors: [`cannot build the native addon: no local Node headers (include/node/node_api.h) next to ${process.execPath}; install the nodejs package's headers or set npm_config_nodedir`], missing: [] };
  }
  // `build` reuses the Makefile (make tracks header dependencies); a changed binding.gyp or --force reconfigures.
  const makefile = join(NATIVE_DIR, 'build', 'Makefile');
  const verb = force || mtime(makefile) < mtime(join(NATIVE_DIR, 'binding.gyp')) ? 'rebuild' : 'build';
  log(`building the native addon (node-gyp ${verb}, headers from ${nodedir})`);
  try {
    execFileSync(process.execPath, [gyp, verb, `--nodedir=${nodedir}`, '--jobs=max'], { cwd: NATIVE_DIR, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, npm_config_nodedir: nodedir } });
  } catch (e) {
    return { built: [], errors: [`node-gyp ${verb} failed: ${tail(e)}`], missing: [] };
  }
  if (!existsSync(ADDON)) return { built: [], errors: [`node-gyp ${verb} succeeded but ${ADDON} is missing`], missing: [] };
  return { built: ['src/native/build/Release/sigma_native.node'], errors: [], missing: [] };
}

/** The exec wrapper that confines proc hosts (src/native/sandbox/sigma-sandbox.c): one C file, libseccomp. */
function buildSandbox({ force, log }) {
  if (!force && mtime(SANDBOX) >= mtime(SANDBOX_SRC)) return { built: [], errors: [], missing: [] };
  const missing = missingFor('sandbox');
  if (missing.length > 0) return { built: [], errors: [missingError('sandbox', missing)], missing };
  mkdirSync(dirname(SANDBOX), { recursive: true });
  const tmp = `${SANDBOX}.tmp-${process.pid}`;
  log('compiling src/native/sandbox/sigma-sandbox.c');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, SANDBOX_SRC, '-lseccomp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, SANDBOX);
  } catch (e) {
    rmSync(tmp, { force: true });
    return { built: [], errors: [`cc failed on src/native/sandbox/sigma-sandbox.c: ${tail(e)}`], missing: [] };
  }
  return { built: ['build/sigma-sandbox'], errors: [], missing: [] };
}

export async function buildNative({ force = false, log = () => {} } = {}) {
  if (process.platform !== 'linux') {
    return { status: 'failed', built: [], errors: [`the native addon and BPF need Linux (this is ${process.platform})`], error: 'not Linux' };
  }
  const parts = [buildBpf({ force, log }), buildAddon({ force, log }), buildSandbox({ force, log })];
  const built = parts.flatMap((p) => p.built);
  const errors = parts.flatMap((p) => p.errors);
  const missing = parts.flatMap((p) => p.missing);
  for (const e of errors) log(e);
  if (errors.length > 0) return { status: 'failed', built, errors, missing, error: errors.join('; ').slice(0, STDERR_TAIL_CHARS) };
  return { status: built.length > 0 ? 'built' : 'skip', built, errors: [], missing: [] };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = process.hrtime.bigint();
  const r = await buildNative({ force: process.argv.includes('--force'), log: (l) => process.stderr.write(`build-native: ${l}\n`) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stderr.write(`build-native: ${r.status}${r.built.length > 0 ? ` (${r.built.join(', ')})` : ''} in ${ms.toFixed(1)} ms\n`);
  process.exit(r.status === 'failed' ? 1 : 0);
}
