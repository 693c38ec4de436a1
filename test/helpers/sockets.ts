import { createServer, connect, type Socket } from 'node:net';

/** Two connected loopback TCP sockets; `close` destroys both and the listener. */
export async function socketPair(): Promise<{ mine: Socket; theirs: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const mine = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => mine.once('connect', r));
  const theirs = await accepted;
  return { mine, theirs, close: () => (mine.destroy(), theirs.destroy(), server.close()) };
}
