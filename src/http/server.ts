import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { InFlightWork } from '../context';

export interface HttpServer {
  /** The port listened on (the one asked for, or the one given for port 0). */
  port: number | undefined;
  /** Stops accepting; requests in progress get `graceMs`, then their connections are cut. */
  stop(): Promise<void>;
}

export async function listen(
  app: Express,
  address: { host: string; port: number },
  drain: { graceMs: number; inFlight: InFlightWork },
): Promise<HttpServer> {
  const server = await new Promise<Server>((resolve, reject) => {
    // Express 5 hands a listen error (port taken) to this callback rather than throwing it.
    const s = app.listen(address.port, address.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo | null)?.port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), drain.graceMs);
      await closed;
      // Sockets can close before their handlers finish (a client that hung up): wait for those too.
      await drain.inFlight.drain();
      clearTimeout(cut);
    },
  };
}
