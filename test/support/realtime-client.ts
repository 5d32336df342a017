import { type ClientOptions, WebSocket } from "ws";

// A realtime client for the tests: the ws library's socket, with the events
// it received kept in order and a way to wait for the next of a type.

export type ServerEvent = { type: string; [field: string]: unknown };

export interface Session {
  socket: WebSocket;
  requestId: string;
  events: ServerEvent[];
  /** Resolves with the first event of this type, waiting for it if need be. */
  next(type: string): Promise<ServerEvent>;
  closed: Promise<{ code: number; reason: string }>;
  send(event: object): void;
}

/** Opens a session and waits for the upgrade; the session's first event is the upstream's session.created. */
export function openSession(url: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<Session> {
  const { protocols, ...clientOptions } = options;
  const socket = new WebSocket(url, protocols ?? [], clientOptions);
  const events: ServerEvent[] = [];
  const waiters: Array<{ type: string; resolve: (event: ServerEvent) => void }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  socket.on("message", (data, isBinary) => {
    const event: ServerEvent = isBinary ? { type: "binary", data } : JSON.parse(data.toString());
    events.push(event);
    for (const waiter of waiters.filter((w) => w.type === event.type)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  });
  return new Promise((resolve, reject) => {
    socket.once("upgrade", (response) => {
      resolve({
        socket,
        requestId: String(response.headers["x-request-id"]),
        events,
        closed,
        send: (event) => socket.send(JSON.stringify(event)),
        next: (type) => {
          const seen = events.find((e) => e.type === type && !(e as { consumed?: boolean }).consumed);
          if (seen) {
            (seen as { consumed?: boolean }).consumed = true;
            return Promise.resolve(seen);
          }
          return new Promise((done, fail) => {
            // A missing event fails with what did arrive, rather than at the test's timeout.
            const timer = setTimeout(() => fail(new Error(`no ${type} event; got ${events.map((e) => e.type).join(", ")}`)), 5_000);
            waiters.push({ type, resolve: (e) => ((e as { consumed?: boolean }).consumed = true, clearTimeout(timer), done(e)) });
          });
        },
      });
    });
    socket.once("unexpected-response", (_request, response) => reject(new Error(`refused with ${response.statusCode}`)));
    socket.once("error", reject);
  });
}
