import { fileURLToPath } from 'node:url';

const here = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** Programs every cluster knows, besides those its config adds. */
export const BUILTIN_PROGRAMS: Readonly<Record<string, string>> = {
  hello: here('hello'),
  noop: here('noop'),
  sleep: here('sleep'),
  fail: here('fail'),
  counter: here('counter'),
  echo: here('echo'),
  stage: here('stage'),
  dpcall: here('dpcall'),
};
