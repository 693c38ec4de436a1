import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FunctionProc, ServiceProc, type DataMessage, type ProcContext } from '../src/sdk/index.js';
import { callService, ProcExitedError, runFunction, serviceUnderTest } from '../src/sdk/testing.js';
import { ProgramCache } from '../src/node/program-cache.js';
import { hashOf } from '../src/programs/bundle.js';
import { findCluster, readContext, writeContext } from '../src/cluster/context.js';

// The in-process harness of sigma-ts/testing: procs run as in a host, stand-ins answer their calls.
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

class Shout extends FunctionProc<[string], string> {
  async run([s]: [string], ctx: ProcContext): Promise<string> {
    return text(await ctx.call('upper', s));
  }
}

class Upper extends ServiceProc<never> {
  receive(): void {}
  onData(m: DataMessage): string {
    return text(m.bytes).toUpperCase();
  }
}

/** A chain stage: forwards to the next service, which answers the caller. */
class Stage extends ServiceProc<never> {
  receive(): void {}
  async onData(m: DataMessage): Promise<void> {
    await this.proc.forward('upper', m);
  }
}

/** A service whose own call reaches a stand-in. */
class Exclaim extends ServiceProc<never> {
  receive(): void {}
  async onData(m: DataMessage): Promise<string> {
    return `${text(await this.proc.call('upper', m.bytes))}!`;
  }
}

test('testing - a function proc calls a stand-in service: a handler or a ServiceProc class', async (t) => {
  t.is(await runFunction(Shout, ['hi'], { services: { upper: (m) => text(m.bytes).toUpperCase() } }), 'HI');
  t.is(await runFunction(Shout, ['hi'], { services: { upper: Upper } }), 'HI');
});

test('testing - an unknown target is the typed error a host gives; a throw rejects; exited with error rejects', async (t) => {
  const e = await t.throwsAsync(runFunction(Shout, ['hi']));
  t.is((e as { type?: string }).type, 'unknown-target');
  class Boom extends FunctionProc<[], never> {
    run(): never {
      throw new Error('boom');
    }
  }
  await t.throwsAsync(runFunction(Boom, []), { message: 'boom' });
  class Quits extends FunctionProc<[], void> {
    run(_a: [], ctx: ProcContext): void {
      ctx.exited({ kind: 'error', message: 'no input' });
    }
  }
  const q = await t.throwsAsync(runFunction(Quits, []));
  t.true(q instanceof ProcExitedError);
  class Twice extends FunctionProc<[], void> {
    run(_a: [], ctx: ProcContext): void {
      ctx.exited({ kind: 'ok', message: 'ok' });
      ctx.exited({ kind: 'ok', message: 'ok' });
    }
  }
  await t.throwsAsync(runFunction(Twice, []), { message: /twice/ });
  await t.throwsAsync(runFunction(Upper as never, []), { instanceOf: TypeError });
});

test('testing - a service is called on its data path; forward hands the request to the next stage; its own calls reach stand-ins', async (t) => {
  t.is(text(await callService(Upper, 'abc')), 'ABC');
  t.is(text(await callService(Stage, 'abc', { services: { upper: Upper } })), 'ABC');
  const svc = await serviceUnderTest(Exclaim, { services: { upper: Upper } });
  t.is(await svc.callText('hey'), 'HEY!');
  t.is(await svc.callText('you'), 'YOU!');
  await svc.stop();
});

test('programs - a corrupted cache entry is fetched again; a good one is read from disk', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sigma-cache-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const code = new TextEncoder().encode('export default 1;\n');
  const hash = hashOf(code);
  let fetches = 0;
  const fetch = async (h: string): Promise<Uint8Array> => (fetches++, t.is(h, hash), code);
  const first = new ProgramCache({ dataDir, fetch });
  const file = await first.path('alpha', hash);
  t.is(fetches, 1);
  t.deepEqual(new Uint8Array(readFileSync(file)), code);
  t.is(await new ProgramCache({ dataDir, fetch }).path('alpha', hash), file); // a later node process: from disk
  t.is(fetches, 1);
  writeFileSync(file, 'export default 2;\n');
  const third = new ProgramCache({ dataDir, fetch });
  await third.path('alpha', hash);
  t.is(fetches, 2);
  t.is(third.refetched, 1);
  t.deepEqual(new Uint8Array(readFileSync(file)), code);
  await t.throwsAsync(third.path('alpha', 'not-a-hash'));
  await t.throwsAsync(third.path('../alpha', hash));
});

test('context - the first source that names a cluster wins, each saying where it came from', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-ctx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'context.json');
  writeContext({ name: 'c', nats: 'nats://u:p@127.0.0.1:4999', dataDir: dir }, file);
  t.deepEqual(readContext(file), { name: 'c', nats: 'nats://u:p@127.0.0.1:4999', dataDir: dir });
  const env = { SIGMA_CONTEXT: file };
  t.like(await findCluster({ flag: 'nats://a:1', env }), { url: 'nats://a:1', source: '--nats' });
  t.like(await findCluster({ env: { ...env, SIGMA_NATS: 'nats://b:2' } }), { url: 'nats://b:2', source: 'SIGMA_NATS' });
  t.like(await findCluster({ env }), { url: 'nats://u:p@127.0.0.1:4999', source: `context file ${file}` });
  t.is(await findCluster({ env: { SIGMA_CONTEXT: join(dir, 'none.json') } }), undefined);
  writeFileSync(file, '{not json');
  t.throws(() => readContext(file), { message: /not JSON/ });
});
