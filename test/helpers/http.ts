import { request, type Agent } from 'node:http';
import { connect } from 'node:net';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  reusedSocket: boolean;
}

/** One request; `chunks` sends the body chunked (no content-length), one write per chunk. */
export function http(port: number, method: string, path: string, body?: string | { chunks: string[] }, options: { agent?: Agent; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: options.agent ?? false, headers: options.headers ?? {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString(), reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (typeof body === 'string') req.end(body);
    else {
      for (const c of body.chunks) req.write(c);
      req.end();
    }
  });
}

/** Writes `raw` in one write on a fresh connection and reads until `count` complete responses (content-length bodies) arrived. */
export function rawExchange(port: number, raw: string, count: number): Promise<Array<{ status: number; body: string }>> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(raw));
    let buf = Buffer.alloc(0);
    const out: Array<{ status: number; body: string }> = [];
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.subarray(0, end).toString();
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) break;
        out.push({ status: Number(head.split(' ')[1]), body: buf.subarray(end + 4, end + 4 + len).toString() });
        buf = buf.subarray(end + 4 + len);
      }
      if (out.length >= count) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', reject);
    s.on('close', () => (out.length < count ? reject(new Error(`connection closed after ${out.length} of ${count} responses`)) : undefined));
  });
}
