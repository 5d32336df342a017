// The Node side of the load, for what wrk cannot give: the time to the first
// byte of a streamed answer, an exact count of requests (every one finished)
// for the database census, and many slow streams held open at once.
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

export interface ChatSample {
  /** 0 when the request failed on the socket. */
  status: number;
  /** From sending the request to the first byte of the answer's body (for a stream: its first event). */
  ttfbMs: number;
}

export interface ChatEndpoint {
  url: string;
  /** Sent with every request besides the key and the content type: how Portkey is told where to relay. */
  headers?: Record<string, string>;
}

export interface ChatTarget extends ChatEndpoint {
  body: string;
}

export const chatBody = (model: string, stream: boolean) =>
  JSON.stringify({ model, stream, messages: [{ role: "user", content: "Benchmark me, please." }] });

/**
 * One request on `agent`; `onFirstByte` runs when the first byte of the body
 * arrives. A socket error is a sample with status 0, so that one failure is
 * counted rather than ending the whole run.
 */
export function sendChat(target: ChatTarget, agent: Agent, key: string, onFirstByte: () => void = () => {}): Promise<ChatSample> {
  const started = performance.now();
  return new Promise((resolve) => {
    const failed = () => resolve({ status: 0, ttfbMs: NaN });
    const req = request(
      target.url,
      { agent, method: "POST", headers: { ...target.headers, authorization: `Bearer ${key}`, "content-type": "application/json" } },
      (res) => {
        let ttfbMs = NaN;
        res.on("data", () => {
          if (!Number.isNaN(ttfbMs)) return;
          ttfbMs = performance.now() - started;
          onFirstByte();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ttfbMs }));
        res.on("error", failed);
      },
    );
    req.on("error", failed);
    req.end(target.body);
  });
}

/**
 * Closed-loop load like wrk's: `connections` connections, each with its own
 * keep-alive socket and the key keys[i % keys.length], each sending its next
 * request when the last one is answered, until it has sent `requestsEach` or
 * `untilMs` has passed.
 */
export async function runChatClients(
  target: ChatTarget,
  options: { keys: string[]; connections: number } & ({ requestsEach: number } | { untilMs: number }),
): Promise<ChatSample[]> {
  const samples: ChatSample[] = [];
  const deadline = "untilMs" in options ? performance.now() + options.untilMs : Infinity;
  const requestsEach = "requestsEach" in options ? options.requestsEach : Infinity;
  await Promise.all(
    Array.from({ length: options.connections }, async (_, i) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const key = options.keys[i % options.keys.length]!;
      for (let sent = 0; sent < requestsEach && performance.now() < deadline; sent++) samples.push(await sendChat(target, agent, key));
      agent.destroy();
    }),
  );
  return samples;
}
