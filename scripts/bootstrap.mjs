#!/usr/bin/env node
// Idempotent bootstrap that every npm entry point runs first (`node scripts/bootstrap.mjs && ...`).
// Steps: npm dependencies, Debian packages, TypeScript build, native addon + BPF objects.
// Plain Node ESM with no npm dependencies: it runs before `npm ci`. When nothing is missing it only reads
// a few stamps and stats the sources, so it costs little more than Node's own start-up.
// Human lines go to stderr, one per step that does something; stdout is kept for --json.
// Stamps are written last and atomically (write + rename): an interrupted run is simply redone.
//
// Contract with scripts/build-native.mjs: `export async function buildNative({ force, log })`, where
// `log(line)` prints one line and the returned object may carry `status: 'skip'|'built'|'failed'`, or
// `built` (true or a non-empty array) / `failed` or `errors` (non-empty array) / `ok: false`.
// A thrown error or a failed status is a warning (the data path has a userspace fallback) unless --strict.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STEPS = ['npm', 'apt', 'build', 'native'];
const LOCK_STAMP = 'node_modules/.sigma-lock-hash';
const BUILD_STAMP = 'dist/.build-stamp';
const BUILD_STAMP_VERSION = 1;
// After a failed apt-get (offline mirror, held package) do not retry on every npm command: apt-get update
// alone can hang on timeouts. The memo lives in node_modules, so a reinstall also retries.
const APT_FAILED_MEMO = 'node_modules/.sigma-apt-failed';
const APT_RETRY_AFTER_MS = 60 * 60 * 1000;
// What tsconfig.json compiles (keep in sync with its "include"), plus files that change how it compiles.
const SOURCE_DIRS = ['src', 'test', 'simulations'];
const SOURCE_FILES = ['cluster.config.ts', 'tsconfig.json', 'package.json', 'package-lock.json'];
// tsc's outputs per source; a dist file of one of these kinds without its source is stale.
const OUTPUT_SUFFIXES = ['.js.map', '.js', '.d.ts.map', '.d.ts'];
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
// Debian packages, each with a cheap probe: a binary on PATH (or an sbin dir) or a header. No dpkg/apt calls.
const DEBIAN_PACKAGES = [
  { pkg: 'clang', bin: 'clang', linuxOnly: true },
  { pkg: 'llvm', bin: 'llc', linuxOnly: true },
  { pkg: 'libbpf-dev', file: '/usr/include/bpf/libbpf.h', linuxOnly: true },
  { pkg: 'bpftool', bin: 'bpftool', linuxOnly: true },
  { pkg: 'libelf-dev', file: '/usr/include/libelf.h', linuxOnly: true },
  { pkg: 'libseccomp-dev', file: '/usr/include/seccomp.h', linuxOnly: true },
  { pkg: 'nats-server', bin: 'nats-server', linuxOnly: false },
  // `nft`: the chaos harness's cut-off and lossy links (src/chaos/); nothing else needs it.
  { pkg: 'nftables', bin: 'nft', linuxOnly: true },
  // `wrk`: the apps benchmark's closed loop (apps/common/wrk.ts); without it autocannon, which costs more CPU.
  { pkg: 'wrk', bin: 'wrk', linuxOnly: true },
];
const USAGE = `usage: node scripts/bootstrap.mjs [--force-build] [--strict] [--quiet] [--json] [--only=npm,apt,build,native]
  --force-build  rebuild TypeScript and native code even if up to date
  --strict       a failed native/BPF build is fatal (default: a warning)
  --quiet        no summary line (lines of steps that do something are still printed)
  --json         print what each step did as JSON on stdout
  --only=LIST    run only these steps`;

class BootstrapError extends Error {
  name = 'BootstrapError';
}

const noColor = (process.env.NO_COLOR ?? '') !== '';
const color = process.stderr.isTTY === true && !noColor;
const paint = (code, text) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const say = (text) => process.stderr.write(`bootstrap: ${text}\n`);
const warn = (text) => say(paint('33', text));
const at = (rel) => path.join(ROOT, rel);
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const nonEmpty = (v) => Array.isArray(v) && v.length > 0;

function parseArgs(argv) {
  const opts = { force: false, strict: false, quiet: false, json: false, only: new Set(STEPS) };
  for (const arg of argv) {
    if (arg === '--force-build') opts.force = true;
    else if (arg === '--strict') opts.strict = true;
    else if (arg === '--quiet' || arg === '-q') opts.quiet = true;
    else if (arg === '--json') opts.json = true;
    else if (arg === '--help' || arg === '-h') return { help: true };
    else if (arg.startsWith('--only=')) {
      const steps = arg.slice('--only='.length).split(',').filter(Boolean);
      const bad = steps.filter((s) => !STEPS.includes(s));
      if (bad.length > 0 || steps.length === 0) throw new BootstrapError(`--only takes a list of ${STEPS.join(',')}; got '${arg}'`);
      opts.only = new Set(steps);
    } else throw new BootstrapError(`unknown option '${arg}'\n${USAGE}`);
  }
  return opts;
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function writeAtomic(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Runs a command with no stdin and its output on our stderr (stdout stays clean for --json). */
function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 2, 2], env });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: r.signal ? `killed by ${r.signal}` : `exit ${r.status}` };
}

function which(bin) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...SBIN_DIRS];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, bin), fs.constants.X_OK);
      return path.join(dir, bin);
    } catch {}
  }
  return null;
}

// ---- step 1: npm dependencies -------------------------------------------------------------------------

/** True when npm's own record of node_modules (its hidden lockfile) matches package-lock.json, so a
 *  missing or stale stamp (a checkout made before this script, or a lock edited by `npm install x`)
 *  needs no reinstall. Every listed package must also still be on disk. */
function nodeModulesMatchLock(lockText) {
  let want, have;
  try {
    want = JSON.parse(lockText).packages;
    have = JSON.parse(fs.readFileSync(at('node_modules/.package-lock.json'), 'utf8')).packages;
  } catch {
    return false;
  }
  if (!want || !have) return false;
  for (const [dir, w] of Object.entries(want)) {
    if (dir === '') continue;
    const h = have[dir];
    if (!h) {
      if (w.optional) continue; // platform-specific optional packages are legitimately absent
      return false;
    }
    if (h.version !== w.version || h.integrity !== w.integrity || h.link !== w.link) return false;
    if (!fs.existsSync(at(dir))) return false;
  }
  return Object.keys(have).every((dir) => dir in want);
}

function stepNpm() {
  const stampFile = at(LOCK_STAMP);
  const lockText = readText(at('package-lock.json'));
  const haveModules = fs.existsSync(at('node_modules'));
  if (lockText !== null && haveModules) {
    const hash = sha256(lockText);
    if (readText(stampFile) === hash) return 'skip';
    if (nodeModulesMatchLock(lockText)) {
      writeAtomic(stampFile, hash);
      return 'skip';
    }
  }
  const verb = lockText === null ? 'install' : 'ci';
  const why = lockText === null ? 'no package-lock.json' : haveModules ? 'package-lock.json changed' : 'node_modules missing';
  say(`npm ${verb} (${why})`);
  const r = run('npm', [verb, '--no-audit', '--no-fund']);
  if (!r.ok) throw new BootstrapError(`npm ${verb} failed (${r.why}); fix the error above, then run \`npm run bootstrap\``);
  const lockAfter = readText(at('package-lock.json'));
  if (lockAfter !== null) writeAtomic(stampFile, sha256(lockAfter));
  return 'installed';
}

// ---- step 2: Debian packages --------------------------------------------------------------------------

function missingPackages() {
  const linux = process.platform === 'linux';
  return DEBIAN_PACKAGES.filter((p) => (linux || !p.linuxOnly) && !(p.bin ? which(p.bin) : fs.existsSync(p.file))).map((p) => p.pkg);
}

function consequences(missing) {
  const bpf = missing.filter((p) => p !== 'nats-server' && p !== 'nftables' && p !== 'wrk');
  const lost = [];
  if (bpf.length > 0) lost.push('no BPF data path (the userspace one still works)');
  if (missing.includes('nftables')) lost.push('no lossy or cut-off links in `npm run chaos` (kill and pause faults still work)');
  if (missing.includes('wrk')) lost.push('the apps benchmark loads on autocannon (more of the cores it measures go to the load)');
  if (missing.includes('nats-server')) lost.push('no embedded NATS server (tests and `npm run cluster` need it)');
  return lost.join(', ');
}

function stepApt() {
  const missing = missingPackages();
  if (missing.length === 0) return { status: 'skip', missing };
  const install = (pkgs) => `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  if (!which('apt-get')) {
    warn(`missing ${missing.join(', ')}: ${consequences(missing)}. Install them with your package manager.`);
    return { status: 'missing', missing };
  }
  if (process.getuid?.() !== 0) {
    warn(`missing ${missing.join(', ')}: ${consequences(missing)}. Run: sudo apt-get update && sudo ${install(missing)}`);
    return { status: 'missing', missing };
  }
  const memo = readText(at(APT_FAILED_MEMO))?.split('\n') ?? [];
  const failedRecently = memo[0] === missing.join(' ') && Date.now() - Number(memo[1]) < APT_RETRY_AFTER_MS;
  if (failedRecently) {
    warn(`missing ${missing.join(', ')}: ${consequences(missing)}. apt-get failed within the hour; to retry now run: apt-get update && ${install(missing)}`);
    return { status: 'missing', missing };
  }
  say(`apt-get install ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const updated = run('apt-get', ['update', '-q'], env);
  if (!updated.ok) warn(`apt-get update failed (${updated.why}); trying the install with the package lists we have`);
  const r = run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], env);
  const still = missingPackages();
  if (still.length === 0) {
    fs.rmSync(at(APT_FAILED_MEMO), { force: true });
    return { status: 'installed', missing: [] };
  }
  if (fs.existsSync(at('node_modules'))) writeAtomic(at(APT_FAILED_MEMO), `${still.join(' ')}\n${Date.now()}\n`);
  const what = r.ok ? `apt-get finished but ${still.join(', ')} still missing` : `apt-get install failed (${r.why})`;
  warn(`${what}: ${consequences(still)}. To retry run: apt-get update && ${install(still)}`);
  return { status: 'missing', missing: still };
}

// ---- step 3: TypeScript build -------------------------------------------------------------------------

/** Depth-first walk without recursion; skips node_modules and dot-directories like tsc does. */
function walkFiles(rootRel, onFile) {
  const stack = [rootRel];
  const dirs = [];
  while (stack.length > 0) {
    const dir = stack.pop();
    let entries;
    try {
      entries = fs.readdirSync(at(dir), { withFileTypes: true });
    } catch {
      continue;
    }
    dirs.push(dir);
    for (const e of entries) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) stack.push(rel);
      } else if (e.isFile()) onFile(rel);
    }
  }
  return dirs;
}

/** The build's inputs: relative path -> "mtime:size". Cheap: one stat per file, no reads. */
function sourceEntries() {
  const entries = new Map();
  const add = (rel) => {
    try {
      const st = fs.statSync(at(rel));
      entries.set(rel, `${st.mtimeMs}:${st.size}`);
    } catch {}
  };
  for (const dir of SOURCE_DIRS) walkFiles(dir, (rel) => rel.endsWith('.ts') && add(rel));
  for (const rel of SOURCE_FILES) add(rel);
  return entries;
}

const isCompiled = (rel) => rel.endsWith('.ts') && !rel.endsWith('.d.ts');
const outputOf = (rel) => `dist/${rel.slice(0, -'.ts'.length)}.js`;

/** A one-line reason to build, or null when the last build is still good. */
function buildReason(now, stamp) {
  if (stamp?.version !== BUILD_STAMP_VERSION || typeof stamp.files !== 'object') return 'no previous build';
  const old = new Map(Object.entries(stamp.files));
  let changed = 0, added = 0, removed = 0, lost = 0;
  for (const [rel, sig] of now) {
    if (!old.has(rel)) added++;
    else if (old.get(rel) !== sig) changed++;
    else if (isCompiled(rel) && !fs.existsSync(at(outputOf(rel)))) lost++;
  }
  for (const rel of old.keys()) if (!now.has(rel)) removed++;
  const parts = [[changed, 'changed'], [added, 'added'], [removed, 'removed'], [lost, 'missing in dist']];
  const text = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`).join(', ');
  if (stamp.incomplete === true) return `last build failed or was interrupted${text === '' ? '' : `; ${text}`}`;
  return text === '' ? null : text;
}

/** Deletes dist outputs whose source is gone (else ava would run deleted tests); returns how many. */
function removeStaleOutputs(now) {
  let removed = 0;
  const consider = (distRel) => {
    const suffix = OUTPUT_SUFFIXES.find((s) => distRel.endsWith(s));
    if (!suffix) return; // not a tsc output (native artifacts, stamps): leave it
    const source = `${distRel.slice('dist/'.length, -suffix.length)}.ts`;
    if (now.has(source)) return;
    fs.rmSync(at(distRel), { force: true });
    removed++;
  };
  const dirs = SOURCE_DIRS.flatMap((dir) => walkFiles(`dist/${dir}`, consider));
  for (const suffix of OUTPUT_SUFFIXES) {
    const rel = `dist/cluster.config${suffix}`;
    if (fs.existsSync(at(rel))) consider(rel);
  }
  for (const dir of dirs.reverse()) {
    try {
      fs.rmdirSync(at(dir)); // only succeeds when empty
    } catch {}
  }
  return removed;
}

function stepBuild(force) {
  const now = sourceEntries(); // taken before compiling: an edit made during the build triggers the next one
  let stamp = null;
  try {
    stamp = JSON.parse(readText(at(BUILD_STAMP)) ?? 'null');
  } catch {}
  const reason = force ? '--force-build' : buildReason(now, stamp);
  if (reason === null) return 'skip';
  const tsc = at('node_modules/.bin/tsc');
  if (!fs.existsSync(tsc)) throw new BootstrapError('node_modules/.bin/tsc is missing; run `npm ci` (or `npm run bootstrap`)');
  const stale = removeStaleOutputs(now);
  say(`compiling TypeScript (${reason}${stale > 0 ? `; removed ${stale} stale outputs` : ''})`);
  // Marked incomplete until tsc succeeds, so a failed or killed build (maybe half-written) is redone.
  if (stamp !== null) writeAtomic(at(BUILD_STAMP), JSON.stringify({ ...stamp, incomplete: true }));
  // Through our own node, not the shim's `#!/usr/bin/env node`, which may find another one on PATH.
  const r = run(process.execPath, [fs.realpathSync(tsc), '-p', '.', ...(color ? [] : ['--pretty', 'false'])]);
  if (!r.ok) throw new BootstrapError(`TypeScript build failed (${r.why}); fix the errors above, then run \`npm run build\``);
  writeAtomic(at(BUILD_STAMP), JSON.stringify({ version: BUILD_STAMP_VERSION, files: Object.fromEntries(now) }));
  return 'built';
}

// ---- step 4: native addon and BPF objects -------------------------------------------------------------

function classifyNative(result) {
  if (result == null || typeof result !== 'object') return 'skip';
  if (['skip', 'built', 'failed'].includes(result.status)) return result.status;
  if (result.ok === false || nonEmpty(result.failed) || nonEmpty(result.errors)) return 'failed';
  if (result.built === true || nonEmpty(result.built)) return 'built';
  return 'skip';
}

async function stepNative(force, strict) {
  const file = at('scripts/build-native.mjs');
  if (!fs.existsSync(file)) return { status: 'absent' };
  let result;
  try {
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.buildNative !== 'function') throw new Error('scripts/build-native.mjs does not export buildNative()');
    result = await mod.buildNative({ force, log: (line) => say(`native: ${line}`) });
  } catch (e) {
    result = { status: 'failed', error: e instanceof Error ? e.message : String(e) };
  }
  const status = classifyNative(result);
  if (status === 'failed') {
    const why = result.error ?? 'see the lines above';
    if (strict) throw new BootstrapError(`native build failed: ${why}`);
    warn(`native build failed (${why}); continuing with the userspace data path (--strict makes this fatal)`);
  }
  return { status, detail: result };
}

// ---- main ---------------------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bootstrap: ${e.message}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const report = { ok: true, npm: 'off', apt: 'off', build: 'off', native: 'off', did: [], aptMissing: [], stepMs: {} };
  let code = 0;
  const timed = async (step, fn) => {
    if (!opts.only.has(step)) return;
    const t0 = performance.now();
    try {
      await fn();
    } catch (e) {
      report[step] = 'failed';
      throw e;
    } finally {
      report.stepMs[step] = Math.round((performance.now() - t0) * 10) / 10;
    }
  };
  try {
    await timed('npm', () => (report.npm = stepNpm()));
    await timed('apt', () => ({ status: report.apt, missing: report.aptMissing } = stepApt()));
    await timed('build', () => (report.build = stepBuild(opts.force)));
    await timed('native', async () => {
      const native = await stepNative(opts.force, opts.strict);
      report.native = native.status;
      if (native.detail !== undefined) report.nativeDetail = native.detail;
    });
  } catch (e) {
    // A BootstrapError already says what to do; anything else (EACCES on a stamp, ...) is a bug or an
    // environment problem, reported with its stack instead of an unhandled rejection.
    const message = e instanceof BootstrapError ? e.message : `unexpected error: ${e instanceof Error ? e.stack : String(e)}`;
    say(paint('31', message));
    report.ok = false;
    report.error = message;
    code = 1;
  }
  report.did = STEPS.filter((s) => report[s] === 'installed' || report[s] === 'built');
  report.ms = Math.round(performance.now()); // since process start: includes Node's own start-up
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else if (!opts.quiet && report.ok) say(paint('2', `ok (${report.ms} ms${report.did.length > 0 ? `; ${report.did.join(', ')}` : ''})`));
  return code;
}

// process.exit: a module imported by the native step must not keep us alive with a stray handle.
process.exit(await main());
