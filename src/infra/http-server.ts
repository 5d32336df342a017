import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { serve } from "@hono/node-server";

export interface RunningServer {
  url: string;
  /** Stops accepting connections; requests already in progress go on (SIGTERM's drain). */
  stopAccepting(): void;
  /** Stops accepting and ends every connection now, idle or busy. */
  close(): Promise<void>;
}

/** What one client may take of the server: Node's defaults let a stalled request hold its connection for minutes. */
export interface ConnectionLimits {
  /** Until the request's headers have all arrived; then 408. */
  headersTimeoutMs: number;
  /** Until the whole request, body included, has arrived; then 408. Responses (streams) are not bounded. */
  requestTimeoutMs: number;
  /** How long a keep-alive connection may sit idle between requests. */
  keepAliveTimeoutMs: number;
  /** Connections beyond this are dropped as they arrive. */
  maxConnections: number;
}

// Node checks the header and request timeouts on a timer; at its default 30 s tick a stalled request
// would outlive its timeout by up to that much.
const TIMEOUT_CHECK_EVERY_MS = 250;

/** Node's `upgrade` event (WebSockets): the handler owns the socket from then on. */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Serves `fetch`, and with `upgrade` the upgrade requests; without `limits`, Node's defaults apply. */
export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
  limits?: ConnectionLimits,
  upgrade?: UpgradeHandler,
): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const serverOptions = limits && {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_EVERY_MS,
    };
    const server = serve({ fetch, hostname: host, port, ...(serverOptions && { serverOptions }) }, (info: AddressInfo) => {
      const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      const closed = new Promise<void>((done) => server.once("close", () => done()));
      const stopAccepting = () => {
        // Idle keep-alive connections are closed too; busy ones finish their request first.
        if (server.listening) server.close();
      };
      resolve({
        url: `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${info.port}`,
        stopAccepting,
        close: async () => {
          stopAccepting();
          server.closeAllConnections();
          // Upgraded sockets are no longer the HTTP server's to close, but still hold it open.
          for (const socket of upgraded) socket.destroy();
          await closed;
        },
      });
    }) as Server;
    const upgraded = new Set<Duplex>();
    // Without a handler Node closes upgrade requests' connections, as before.
    if (upgrade) {
      server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        upgraded.add(socket);
        socket.once("close", () => upgraded.delete(socket));
        upgrade(request, socket, head);
      });
    }
    if (limits) {
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      server.maxConnections = limits.maxConnections;
    }
    server.once("error", reject);
  });
}
