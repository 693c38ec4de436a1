import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Runs the real scripts/bootstrap.mjs: in the repo itself, and in throwaway copies of it under /tmp.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Report {
  ok: boolean;
  npm: string;
  apt: string;
  build: string;
  native: string;
  did: string[];
  aptMissing: string[];
  error?: string;
}

interface Run {
  code: number | null;
  report: Report;
  stderr: string;
}

function bootstrap(root: string, ...args: string[]): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' };
  // Costs ~60 ms per Node start (see DESIGN.md); only the repo run may need the registry's CA.
  if (root !== repoRoot) delete env['NODE_EXTRA_CA_CERTS'];
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/bootstrap.mjs'), '--json', ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`bootstrap printed no JSON report (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.status, report, stderr: r.stderr };
}

/** A minimal project: the repo's manifests and scripts, a shared node_modules, two small sources. */
function tempProject(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigma-bootstrap-'));
  t.teardown(() => {
    fs.rmSync(path.join(dir, 'node_modules'), { force: true }); // the symlink only, never its target
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json']) fs.copyFileSync(path.join(repoRoot, f), path.join(dir, f));
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(path.join(repoRoot, 'scripts/bootstrap.mjs'), path.join(dir, 'scripts/bootstrap.mjs'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  write(dir, 'src/a.ts', 'export const a = 1;\n');
  write(dir, 'src/gone/b.ts', 'export const b = 2;\n');
  return dir;
}

function write(dir: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

/** Moves a file's mtime forward so that "newer than the last build" holds on any filesystem. */
function touchLater(file: string, seconds: number): void {
  const st = fs.statSync(file);
  const later = new Date(st.mtimeMs + seconds * 1000);
  fs.utimesSync(file, later, later);
}

const exists = (dir: string, rel: string): boolean => fs.existsSync(path.join(dir, rel));

test('bootstrap - a second run in the repo does no work', (t) => {
  const first = bootstrap(repoRoot);
  t.is(first.code, 0, first.stderr);
  const second = bootstrap(repoRoot);
  t.is(second.code, 0, second.stderr);
  t.true(second.report.ok);
  t.deepEqual(second.report.did, []);
  t.is(second.report.npm, 'skip');
  t.is(second.report.build, 'skip');
  t.true(['skip', 'missing'].includes(second.report.apt), second.report.apt);
  t.true(['skip', 'absent'].includes(second.report.native), second.report.native);
  // Nothing done and nothing missing: not a single line on stderr (--json replaces the summary).
  if (second.report.apt === 'skip') t.is(second.stderr, '');
});

test('bootstrap - bad options are rejected with the usage', (t) => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/bootstrap.mjs'), '--frobnicate'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown option '--frobnicate'/);
  t.regex(r.stderr, /usage:/);
});

test('bootstrap - an edited or touched source is rebuilt, an unchanged tree is not', (t) => {
  const dir = tempProject(t);
  const first = bootstrap(dir, '--only=build');
  t.is(first.report.build, 'built', first.stderr);
  t.true(exists(dir, 'dist/src/a.js') && exists(dir, 'dist/src/gone/b.js'));
  t.is(bootstrap(dir, '--only=build').report.build, 'skip');

  write(dir, 'src/a.ts', "export const a = 'edited';\n");
  touchLater(path.join(dir, 'src/a.ts'), 5);
  const edited = bootstrap(dir, '--only=build');
  t.is(edited.report.build, 'built');
  t.regex(edited.stderr, /compiling TypeScript \(1 changed\)/);
  t.regex(fs.readFileSync(path.join(dir, 'dist/src/a.js'), 'utf8'), /'edited'/);

  touchLater(path.join(dir, 'src/a.ts'), 10);
  t.is(bootstrap(dir, '--only=build').report.build, 'built');
  t.is(bootstrap(dir, '--only=build').report.build, 'skip');

  fs.rmSync(path.join(dir, 'dist/src/a.js'));
  t.is(bootstrap(dir, '--only=build').report.build, 'built');
  t.true(exists(dir, 'dist/src/a.js'));
  t.is(bootstrap(dir, '--only=build', '--force-build').report.build, 'built');
});

test('bootstrap - a deleted source loses its stale output', (t) => {
  const dir = tempProject(t);
  t.is(bootstrap(dir, '--only=build').report.build, 'built');
  t.true(exists(dir, 'dist/src/gone/b.js'));
  // A leftover from a build before the stamp existed is swept too.
  write(dir, 'dist/src/older.test.js', 'throw new Error("stale");\n');
  write(dir, 'dist/src/native.node', 'not a tsc output: kept');

  fs.rmSync(path.join(dir, 'src/gone'), { recursive: true });
  const r = bootstrap(dir, '--only=build');
  t.is(r.report.build, 'built');
  t.regex(r.stderr, /1 removed; removed 4 stale outputs/); // b.js, its map and declaration (the package ships types), older.test.js
  t.false(exists(dir, 'dist/src/gone'));
  t.false(exists(dir, 'dist/src/older.test.js'));
  t.true(exists(dir, 'dist/src/native.node'));
  t.true(exists(dir, 'dist/src/a.js'));
});

test('bootstrap - compile errors fail the run until they are fixed', (t) => {
  const dir = tempProject(t);
  t.is(bootstrap(dir, '--only=build').report.build, 'built');
  write(dir, 'src/bad.ts', "export const n: number = 'not a number';\n");
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = bootstrap(dir, '--only=build');
    t.is(r.code, 1);
    t.false(r.report.ok);
    t.is(r.report.build, 'failed');
    t.regex(r.stderr, /src\/bad\.ts.*TS2322/);
  }
  write(dir, 'src/bad.ts', 'export const n: number = 1;\n');
  touchLater(path.join(dir, 'src/bad.ts'), 5);
  const fixed = bootstrap(dir, '--only=build');
  t.is(fixed.code, 0, fixed.stderr);
  t.regex(fixed.stderr, /last build failed or was interrupted/);
  t.is(bootstrap(dir, '--only=build').report.build, 'skip');
});

test('bootstrap - npm installs when node_modules is missing or the lockfile changes', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigma-bootstrap-npm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(path.join(repoRoot, 'scripts/bootstrap.mjs'), path.join(dir, 'scripts/bootstrap.mjs'));
  // A local file: dependency needs no registry, so this runs the real `npm ci` offline.
  write(dir, 'dep/package.json', JSON.stringify({ name: 'dep', version: '1.0.0' }));
  const manifest = { name: 'fx', version: '1.0.0', private: true };
  write(dir, 'package.json', JSON.stringify(manifest));
  const lock = { name: 'fx', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'fx', version: '1.0.0' } } };
  write(dir, 'package-lock.json', JSON.stringify(lock));

  const first = bootstrap(dir, '--only=npm');
  t.is(first.report.npm, 'installed', first.stderr);
  t.regex(first.stderr, /npm ci \(node_modules missing\)/);
  t.is(bootstrap(dir, '--only=npm').report.npm, 'skip');

  const deps = { dep: 'file:dep' };
  write(dir, 'package.json', JSON.stringify({ ...manifest, dependencies: deps }));
  const withDep = {
    ...lock,
    packages: { '': { name: 'fx', version: '1.0.0', dependencies: deps }, dep: { version: '1.0.0' }, 'node_modules/dep': { resolved: 'dep', link: true } },
  };
  write(dir, 'package-lock.json', JSON.stringify(withDep));
  const changed = bootstrap(dir, '--only=npm');
  t.is(changed.report.npm, 'installed', changed.stderr);
  t.regex(changed.stderr, /npm ci \(package-lock.json changed\)/);
  t.true(exists(dir, 'node_modules/dep/package.json'));

  // The same dependencies reformatted: the hash differs but npm's record matches, so no reinstall.
  write(dir, 'package-lock.json', JSON.stringify(withDep, null, 2));
  const reformatted = bootstrap(dir, '--only=npm');
  t.is(reformatted.report.npm, 'skip', reformatted.stderr);
  t.is(reformatted.stderr, '');
});

test('bootstrap - a failing native build warns, or fails the run with --strict', (t) => {
  const dir = tempProject(t);
  write(dir, 'scripts/build-native.mjs', "export async function buildNative() { throw new Error('no compiler here'); }\n");
  const lenient = bootstrap(dir, '--only=native');
  t.is(lenient.code, 0);
  t.is(lenient.report.native, 'failed');
  t.regex(lenient.stderr, /native build failed \(no compiler here\); continuing/);
  const strict = bootstrap(dir, '--only=native', '--strict');
  t.is(strict.code, 1);
  t.false(strict.report.ok);

  write(
    dir,
    'scripts/build-native.mjs',
    "export async function buildNative({ force, log }) { if (!force) return { built: [] }; log('rebuilt x'); return { built: ['x'] }; }\n",
  );
  t.is(bootstrap(dir, '--only=native').report.native, 'skip');
  const forced = bootstrap(dir, '--only=native', '--force-build');
  t.is(forced.report.native, 'built');
  t.regex(forced.stderr, /bootstrap: native: rebuilt x/);
});
