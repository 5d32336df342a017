import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
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

/** Serves `fetch`; without `limits`, Node's defaults apply. */
export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
  limits?: ConnectionLimits,
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
          await closed;
        },
      });
    }) as Server;
    if (limits) {
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      server.maxConnections = limits.maxConnections;
    }
    server.once("error", reject);
  });
}
