// Builds the native addon (src/native) with the node-gyp that npm ships, against the local Node headers.
// Skips when the built addon is newer than its sources, so a no-op costs a few stat calls. BPF objects
// (bpf/*.bpf.c) will be built here too once they exist. No npm dependencies: runs before `npm ci` ends.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

export async function buildNative({ force = false, log = () => {} } = {}) {
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
