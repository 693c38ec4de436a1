import { connect, createServer, type Server, type Socket } from 'node:net';

/** How long a connection to the pairing listener waits to be claimed (and a claim for its connection). */
export const PAIR_CLAIM_MS = 2_000;

/**
 * Connected TCP loopback pairs, one per host (and one for the hub): the host's end is inherited at
 * fork, this process keeps the other. TCP, not AF_UNIX: sk_msg does not see AF_UNIX sends. Anyone on
 * this machine may connect to the listener, so a connection no preparation claims soon is closed.
 */
export class LoopbackPairs {
  readonly #accepted = new Map<number, Socket>();
  readonly #claims = new Map<number, (s: Socket) => void>();

  private constructor(
    private readonly server: Server,
    private readonly port: number,
  ) {
    server.on('connection', (s) => this.#onConnection(s));
  }

  static async listen(): Promise<LoopbackPairs> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((r, j) => server.once('error', j).listen(0, '127.0.0.1', () => r()));
    return new LoopbackPairs(server, (server.address() as { port: number }).port);
  }

  /** A connected pair: `theirs` for a host (or the hub socket), `mine` accepted here. */
  async pair(): Promise<{ mine: Socket; theirs: Socket }> {
    const theirs = connect(this.port, '127.0.0.1');
    theirs.pause(); // nothing here may read what belongs to the host
    await new Promise<void>((r, j) => theirs.once('error', j).once('connect', () => r()));
    const port = theirs.localPort!;
    const early = this.#accepted.get(port);
    if (early !== undefined) {
      this.#accepted.delete(port);
      return { mine: early, theirs };
    }
    const mine = await new Promise<Socket>((r, j) => {
      const timer = setTimeout(() => {
        this.#claims.delete(port);
        theirs.destroy();
        j(new Error(`the data-path connection from port ${port} was not accepted within ${PAIR_CLAIM_MS} ms`));
      }, PAIR_CLAIM_MS);
      this.#claims.set(port, (s) => {
        clearTimeout(timer);
        r(s);
      });
    });
    return { mine, theirs };
  }

  close(): void {
    for (const s of this.#accepted.values()) s.destroy();
    this.server.close();
  }

  #onConnection(s: Socket): void {
    const port = s.remotePort;
    if (s.remoteAddress !== '127.0.0.1' || port === undefined) return void s.destroy();
    const claim = this.#claims.get(port);
    if (claim !== undefined) {
      this.#claims.delete(port);
      return claim(s);
    }
    this.#accepted.set(port, s);
    setTimeout(() => {
      if (this.#accepted.get(port) !== s) return;
      this.#accepted.delete(port);
      s.destroy();
    }, PAIR_CLAIM_MS).unref();
  }
}
