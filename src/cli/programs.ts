/** `sigma deploy`, `sigma programs ls|rm` and `sigma new`: programs as users write and ship them. */
import { InvalidArgumentError, type Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Bus } from '../nats/types.js';
import { deploy, programStore } from '../programs/client.js';
import { DeployError } from '../programs/errors.js';
import { checkName } from '../programs/store.js';
import { PACKAGE_ROOT } from '../programs/paths.js';
import { rollService } from '../programs/roll.js';
import { SigmaClient } from '../client/client.js';
import { table } from './format.js';

interface CliGlue {
  withBus<T>(fn: (bus: Bus) => Promise<T>): Promise<T>;
  out(human: string, data: unknown): void;
}

const version = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a version number, got "${v}"`);
  return n;
};

export function programCommands(program: Command, { withBus, out }: CliGlue): void {
  program
    .command('deploy <path>')
    .description('bundles a program (a .ts/.js file or a directory) and makes it the current version of --name in --realm; with --rollback, <path> is the program\'s name')
    .option('--name <name>', 'program name (default: the file\'s or the package\'s)')
    .option('--realm <realm>', 'realm', 'default')
    .option('--no-type-check', 'skip the TypeScript type check (the bundler still refuses syntax errors)')
    .option('--rollback [version]', 'new spawns get the version before the current one (or this version); running procs keep theirs', version)
    .action((path: string, o: { name?: string; realm: string; typeCheck: boolean; rollback?: number | true }) =>
      withBus(async (bus) => {
        if (o.rollback !== undefined) {
          const name = o.name ?? path;
          const v = await (await programStore(bus)).rollback(o.realm, name, o.rollback === true ? undefined : o.rollback);
          return out(`${o.realm}/${name}: new spawns get v${v.version} (${v.hash.slice(0, 12)})`, { realm: o.realm, name, ...v });
        }
        const started = performance.now();
        const d = await deploy(bus, path, { realm: o.realm, typeCheck: o.typeCheck, ...(o.name === undefined ? {} : { name: o.name }) });
        out(`${d.realm}/${d.name} v${d.version}: ${d.kind}, ${d.bytes} bytes, ${d.hash.slice(0, 12)} (${Math.round(performance.now() - started)} ms)`, d);
      }),
    );

  program
    .command('roll <name>')
    .description('rolls the service named <name> to its program\'s current version: starts the new proc, moves the name, evicts the old one')
    .option('--realm <realm>', 'realm', 'default')
    .action((name: string, o: { realm: string }) =>
      withBus(async (bus) => {
        const r = await rollService(await SigmaClient.connect(bus), o.realm, name);
        out(`${o.realm}/${name}: ${r.from} -> ${r.to}`, r);
      }),
    );

  const programs = program.command('programs').description("a realm's deployed programs");
  programs
    .command('ls')
    .description("the realm's programs, then those of cluster.config.ts (every realm's, unless it has its own of the name)")
    .option('--realm <realm>', 'realm', 'default')
    .action((o: { realm: string }) =>
      withBus(async (bus) => {
        const store = await programStore(bus);
        const own = await store.list(o.realm);
        const cluster = (await store.listCluster()).filter((c) => !own.some((r) => r.name === c.name));
        const rows = [...own, ...cluster].map((r) => {
          const cur = r.versions.find((v) => v.version === r.current)!;
          return { name: r.name, from: r.realm === o.realm ? 'realm' : 'cluster', current: `v${r.current}`, kind: cur.kind, bytes: cur.bytes, hash: cur.hash.slice(0, 12), versions: r.versions.map((v) => v.version).join(',') };
        });
        out(table(rows, ['name', 'from', 'current', 'kind', 'bytes', 'hash', 'versions']), own);
      }),
    );
  programs
    .command('rm <name>')
    .option('--realm <realm>', 'realm', 'default')
    .action((name: string, o: { realm: string }) =>
      withBus(async (bus) => {
        await (await programStore(bus)).remove(o.realm, name);
        out(`${o.realm}/${name} removed (running procs keep their bundle)`, { ok: true });
      }),
    );

  program
    .command('new <name> [dir]')
    .description('writes a typed proc and a test for it (run in-process by sigma-ts/testing) into dir (default: ./<name>)')
    .option('--function', 'a function proc (the default)')
    .option('--service', 'a service proc on the data path')
    .action((name: string, dir: string | undefined, o: { function?: boolean; service?: boolean }) => {
      if (o.function === true && o.service === true) throw new DeployError('bad-name', 'give --function or --service, not both');
      checkName('program', name);
      const target = resolve(dir ?? name);
      const files = scaffold(name, o.service === true ? 'service' : 'function');
      const clash = Object.keys(files).filter((f) => existsSync(join(target, f)));
      if (clash.length > 0) throw new DeployError('bad-name', `${relative(process.cwd(), target) || '.'} already has ${clash.join(', ')}; choose another directory`);
      mkdirSync(target, { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(target, f), text);
      out(`wrote ${Object.keys(files).join(', ')} in ${target}\nnext: npm install && npm test; then sigma deploy ${relative(process.cwd(), target) || '.'}`, { dir: target, files: Object.keys(files) });
    });
}

const pascal = (name: string): string => name.split(/[-_]/).filter((p) => p.length > 0).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('') || 'Proc';

/** The files of a new program: the proc, its test, a package.json and a tsconfig. */
export function scaffold(name: string, kind: 'function' | 'service'): Record<string, string> {
  const Cls = pascal(name);
  const proc =
    kind === 'function'
      ? `import { FunctionProc, type ProcContext } from 'sigma-ts';

/**
 * ${name}: a function proc. It asks the service "upper" (if the realm runs one) and greets.
 * Deploy: \`sigma deploy .\`; run: \`sigma spawn ${name} world --wait\`.
 */
export default class ${Cls} extends FunctionProc<[string?], string> {
  async run([who = 'world']: [string?], ctx: ProcContext): Promise<string> {
    const loud = await ctx.call('upper', who, { timeoutMs: 1_000 }).then((b) => new TextDecoder().decode(b), () => who);
    ctx.log.info({ who }, 'greeting');
    return \`hello \${loud}\`;
  }
}
`
      : `import { ServiceProc, type DataMessage } from 'sigma-ts';

/**
 * ${name}: a service proc on the data path: answers each call with the payload in upper case.
 * Deploy: \`sigma deploy .\`; run: \`sigma spawn ${name} --name ${name}\`; call: \`sigma call ${name} hi\`.
 */
export default class ${Cls} extends ServiceProc<never> {
  receive(): void {}

  onData(msg: DataMessage): string {
    return new TextDecoder().decode(msg.bytes).toUpperCase();
  }
}
`;
  const test =
    kind === 'function'
      ? `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFunction } from 'sigma-ts/testing';
import ${Cls} from './${name}.js';

test('${name} greets through a stand-in "upper" service', async () => {
  const upper = (msg: { bytes: Uint8Array }) => new TextDecoder().decode(msg.bytes).toUpperCase();
  assert.equal(await runFunction(${Cls}, ['world'], { services: { upper } }), 'hello WORLD');
});

test('${name} greets as it is without the service', async () => {
  assert.equal(await runFunction(${Cls}, ['world']), 'hello world');
});
`
      : `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceUnderTest } from 'sigma-ts/testing';
import ${Cls} from './${name}.js';

test('${name} answers in upper case', async () => {
  const svc = await serviceUnderTest(${Cls});
  try {
    assert.equal(await svc.callText('hi there'), 'HI THERE');
  } finally {
    await svc.stop();
  }
});
`;
  const pkg = { name, version: '0.1.0', private: true, type: 'module', main: `${name}.ts`, scripts: { build: 'tsc -p .', test: 'tsc -p . && node --test dist/' }, dependencies: { 'sigma-ts': `file:${PACKAGE_ROOT.replace(/\/$/, '')}` }, devDependencies: { typescript: '*', '@types/node': '^20' } };
  const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, outDir: 'dist', rootDir: '.', types: ['node'] }, include: ['*.ts'] };
  return { [`${name}.ts`]: proc, [`${name}.test.ts`]: test, 'package.json': `${JSON.stringify(pkg, null, 2)}\n`, 'tsconfig.json': `${JSON.stringify(tsconfig, null, 2)}\n` };
}
