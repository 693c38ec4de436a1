// Builds the native addon (src/native) with the node-gyp that npm ships, against the local Node headers,
// and the BPF objects (bpf/*.bpf.c -> build/bpf/*.bpf.o) with clang. Each is skipped when newer than its
// sources, so a no-op costs a few stat calls. No npm dependencies: it runs before `npm ci` ends.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'src', 'native');
const addon = join(nativeDir, 'build', 'Release', 'sigma_native.node');

function newest(paths) {
  return Math.max(...paths.filter((p) => existsSync(p)).map((p) => statSync(p).mtimeMs));
}

function nodeGyp() {
  const candidates = [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js', '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'];
  return candidates.find((c) => existsSync(c));
}

const bpfDir = join(root, 'bpf');
const bpfOut = join(root, 'build', 'bpf');

function buildBpf({ force, log }) {
  if (!existsSync(bpfDir)) return { built: [], errors: [] };
  const headers = readdirSync(bpfDir).filter((f) => f.endsWith('.h')).map((f) => join(bpfDir, f));
  const built = [];
  const errors = [];
  for (const src of readdirSync(bpfDir).filter((f) => f.endsWith('.bpf.c'))) {
    const out = join(bpfOut, src.replace(/\.c$/, '.o'));
    if (!force && existsSync(out) && statSync(out).mtimeMs >= newest([join(bpfDir, src), ...headers])) continue;
    log(`compiling bpf/${src}`);
    try {
      mkdirSync(bpfOut, { recursive: true });
      const multiarch = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
      execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I${multiarch}`, `-I${bpfDir}`, '-c', join(bpfDir, src), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
      built.push(`build/bpf/${src.replace(/\.c$/, '.o')}`);
    } catch (e) {
      errors.push(`clang failed on bpf/${src}: ${String(e.stderr ?? e.message).slice(-2000)} (apt-get install clang llvm libbpf-dev)`);
    }
  }
  return { built, errors };
}

export async function buildNative({ force = false, log = () => {} } = {}) {
  const bpf = buildBpf({ force, log });
  const addonResult = await buildAddon({ force, log });
  const built = [...bpf.built, ...(addonResult.built ?? [])];
  const errors = [...bpf.errors, ...(addonResult.errors ?? [])];
  if (errors.length > 0) return { status: 'failed', built, errors };
  return built.length > 0 ? { status: 'built', built } : { status: 'skip' };
}

async function buildAddon({ force, log }) {
  const sources = readdirSync(nativeDir).filter((f) => /\.(cc|h|gyp)$/.test(f)).map((f) => join(nativeDir, f));
  if (!force && existsSync(addon) && statSync(addon).mtimeMs >= newest(sources)) return { status: 'skip' };
  const gyp = nodeGyp();
  if (gyp === undefined) return { status: 'failed', errors: ['node-gyp not found (it ships with npm)'] };
  const headers = existsSync('/usr/include/node/node_api.h') ? ['--nodedir=/usr'] : [];
  log('building the native addon (node-gyp)');
  try {
    execFileSync(process.execPath, [gyp, 'rebuild', ...headers], { cwd: nativeDir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return { status: 'failed', errors: [`node-gyp rebuild failed: ${String(e.stderr ?? e.message).slice(-2000)}`] };
  }
  return { status: 'built', built: ['src/native/build/Release/sigma_native.node'] };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await buildNative({ force: process.argv.includes('--force'), log: (l) => console.error(l) });
  console.error(JSON.stringify(r));
  process.exit(r.status === 'failed' ? 1 : 0);
}
