import { randomUUID } from 'node:crypto';
import { ServiceProc, type DataMessage } from '../../src/proc/types.js';
import { httpAnswer, readRequest } from '../../src/gateway/envelope.js';
import { handle, parseCookies, parseForm } from './logic/frontend.js';
import { dataPathRpc } from './sigma-service.js';

/** Online Boutique's frontend on sigma-ts: behind gateway routes with the http envelope (src/gateway/envelope.ts). */
export default class BoutiqueFrontend extends ServiceProc<never> {
  receive(): void {}
  async onData(msg: DataMessage): Promise<Uint8Array> {
    const { head, body } = readRequest(msg.bytes);
    const form = head.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true ? parseForm(new TextDecoder().decode(body)) : {};
    const a = await handle(
      { method: head.method, path: head.path, query: head.query, form, cookies: parseCookies(head.headers['cookie']), ...(head.headers['referer'] === undefined ? {} : { referer: head.headers['referer'] }) },
      { rpc: dataPathRpc((t, p, o) => this.proc.call(t, p, o)), newSession: randomUUID, nowMs: Date.now },
    );
    return httpAnswer(a.status, a.body, a.headers);
  }
}
