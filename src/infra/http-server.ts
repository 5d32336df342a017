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

export function listen(fetch: (request: Request) => Response | Promise<Response>, host: string, port: number): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port }, (info: AddressInfo) => {
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
          (server as Server).closeAllConnections();
          await closed;
        },
      });
    });
    server.once("error", reject);
  });
}
