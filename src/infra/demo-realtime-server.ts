import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { createDemoRealtimeConversation } from "../domain/inference/providers/demo/demo-realtime.js";

// The demo provider's realtime endpoint: a WebSocket server on loopback that
// the relay connects to as it would to any realtime upstream, so a demo
// session goes through exactly the path (auth, hold, metering, close codes) a
// real one does. It listens on an ephemeral port of 127.0.0.1 only, and only
// when the model table has a demo model offering realtime.

export interface DemoRealtimeServer {
  /** The upstream base URL to relay to: ws://127.0.0.1:<port>/v1. */
  baseUrl: string;
  close(): Promise<void>;
}

export function startDemoRealtimeServer(): Promise<DemoRealtimeServer> {
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false });
    server.once("error", reject);
    server.on("connection", (socket, request) => {
      const model = new URL(request.url ?? "/", "ws://demo").searchParams.get("model") ?? "demo";
      const conversation = createDemoRealtimeConversation(model);
      const send = (events: object[]) => {
        for (const event of events) socket.send(JSON.stringify(event));
      };
      socket.on("error", () => socket.terminate());
      socket.on("message", (data, isBinary) => {
        if (!isBinary) send(conversation.receive(data.toString()));
      });
      send(conversation.greeting());
    });
    server.once("listening", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        baseUrl: `ws://127.0.0.1:${port}/v1`,
        close: () =>
          new Promise<void>((done) => {
            for (const client of server.clients) client.terminate();
            server.close(() => done());
          }),
      });
    });
  });
}
