/** What can go wrong deploying or managing a program: one error, a `type` per failure, a message that says what to do. */
export type DeployErrorType =
  | 'no-entry' // the path names no file or directory with an entry module
  | 'syntax' // the bundler refused it (the compiler's message is in `message`)
  | 'type' // TypeScript that does not type-check (the compiler's diagnostics are in `message`)
  | 'load' // the bundle threw while it was loaded for the check
  | 'not-a-proc' // no default export of a class extending FunctionProc or ServiceProc
  | 'too-large' // the bundle is over PROGRAM_BYTES_MAX
  | 'bad-name' // a program or realm name that is not a token
  | 'unknown-realm'
  | 'unknown-program'
  | 'unknown-version'
  | 'no-store'; // a bus without object stores (the simulator)

export class DeployError extends Error {
  constructor(
    readonly type: DeployErrorType,
    message: string,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}

/** The CLI's exit code for each: a path that is not there is usage; the rest are refusals. */
export const isUsageError = (e: DeployError): boolean => e.type === 'no-entry' || e.type === 'bad-name';
