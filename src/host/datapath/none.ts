import { DataPathUnavailableError, type DataPathApi } from '../../proc/data.js';

/** The data-path API of a proc whose host has none: every call fails with a typed error saying why. */
export function noDataPath(reason: string): DataPathApi {
  const fail = (): never => {
    throw new DataPathUnavailableError(reason);
  };
  const reject = (): Promise<never> => Promise.reject(new DataPathUnavailableError(reason));
  return { endpoint: undefined, send: reject, call: reject, callWith: reject, forward: reject, alloc: fail, serve: () => {} };
}
