import { createServer, type IncomingHttpHeaders, STATUS_CODES } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

// A real local WebSocket server playing a realtime-capable upstream (OpenAI's
// realtime protocol, the parts the relay meters): it greets with
// session.created, answers each response.create with response.created, text
// deltas and a response.done carrying the usage it is told to report (which
// may lie), and echoes binary frames. It can refuse upgrades, and drop every
// session it holds.

export interface RealtimeUpstreamKnobs {
  /** `response.usage` of each response.done, as sent: anything, to play a lying upstream. */
  usage: unknown;
  /** The text of each response, sent as one delta per word. */
  reply: string;
  /** Refuse every upgrade with this HTTP status instead of accepting it. */
  refuseWith: number | null;
}

export interface UpstreamConnection {
  url: string;
  headers: IncomingHttpHeaders;
  /** Text events the upstream received, parsed. */
  received: Array<{ type: string; [field: string]: unknown }>;
  socket: WebSocket;
}

export interface RealtimeUpstream {
  /** The baseUrl to put in a model table: http://127.0.0.1:port/v1. */
  baseUrl: string;
  /** Upgrade requests that reached it, accepted or refused. */
  attempts: number;
  connections: UpstreamConnection[];
  set(knobs: Partial<RealtimeUpstreamKnobs>): void;
  reset(): void;
  /** Cuts every open session without a closing handshake, as a crashed upstream would. */
  dropAll(): void;
  close(): Promise<void>;
}

export const DEFAULT_REALTIME_USAGE = { total_tokens: 3000, input_tokens: 1000, output_tokens: 2000 };
const defaults = (): RealtimeUpstreamKnobs => ({ usage: DEFAULT_REALTIME_USAGE, reply: "Hello from the realtime upstream", refuseWith: null });

export async function startRealtimeUpstream(): Promise<RealtimeUpstream> {
  let knobs = defaults();
  let responses = 0;
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_request, response) => response.writeHead(404).end());
  const upstream: RealtimeUpstream = {
    baseUrl: "",
    attempts: 0,
    connections: [],
    set: (changes) => void (knobs = { ...knobs, ...changes }),
    reset() {
      knobs = defaults();
      upstream.attempts = 0;
      upstream.connections = [];
    },
    dropAll() {
      for (const connection of upstream.connections) connection.socket.terminate();
    },
    async close() {
      upstream.dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const send = (socket: WebSocket, event: object) => socket.send(JSON.stringify(event));

  function answer(socket: WebSocket): void {
    const id = `resp_${++responses}`;
    send(socket, { type: "response.created", event_id: `ev_${id}_0`, response: { id, object: "realtime.response", status: "in_progress" } });
    for (const [i, word] of knobs.reply.split(" ").entries()) {
      send(socket, { type: "response.output_text.delta", event_id: `ev_${id}_${i + 1}`, response_id: id, delta: i === 0 ? word : ` ${word}` });
    }
    send(socket, { type: "response.done", event_id: `ev_${id}_done`, response: { id, object: "realtime.response", status: "completed", usage: knobs.usage } });
  }

  server.on("upgrade", (request, socket, head) => {
    upstream.attempts++;
    if (knobs.refuseWith !== null) {
      const status = knobs.refuseWith;
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection: UpstreamConnection = { url: request.url ?? "", headers: request.headers, received: [], socket: ws };
      upstream.connections.push(connection);
      send(ws, { type: "session.created", event_id: "ev_session", session: { id: `sess_${upstream.connections.length}`, object: "realtime.session" } });
      ws.on("message", (data, isBinary) => {
        if (isBinary) return ws.send(data, { binary: true });
        const event = JSON.parse(data.toString()) as UpstreamConnection["received"][number];
        connection.received.push(event);
        if (event.type === "response.create") answer(ws);
        if (event.type === "session.update") send(ws, { type: "session.updated", event_id: `ev_updated`, session: event.session });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return upstream;
}
