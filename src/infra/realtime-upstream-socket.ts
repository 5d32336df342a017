import { WebSocket } from "ws";
import { DomainError } from "../domain/errors.js";
import type { Logger } from "../domain/logger.js";
import type { RealtimeTarget } from "../domain/realtime/realtime-targets.js";

// The upstream side of a realtime relay (SPEC 9, 10): the model's realtime
// upstreams are tried in order until one accepts the WebSocket. A refused
// connection, a timeout or a 5xx (or 429) on the upgrade falls over to the
// next; a 4xx is a configuration fault (a wrong key, an unknown model) that
// the next upstream would not cure either. Nothing is retried once relayed.

export interface UpstreamSocketOptions {
  signal: AbortSignal;
  /** The largest frame the upstream may send: a bigger one closes the socket (1009). */
  maxPayload: number;
  /** Headers of the client's to pass on (OpenAI-Beta), besides each target's own. */
  headers?: Record<string, string>;
  handshakeTimeoutMs?: number;
  logger: Logger;
}

/** Connects to the first target that accepts; the socket it gives is paused until its reader calls `resume()`. */
export type ConnectRealtimeUpstream = (targets: RealtimeTarget[], options: UpstreamSocketOptions) => Promise<{ socket: WebSocket; target: RealtimeTarget }>;

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

class Refused extends Error {
  constructor(
    message: string,
    readonly failOver: boolean,
  ) {
    super(message);
  }
}

function connectOne(target: RealtimeTarget, options: UpstreamSocketOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target.url, {
      headers: { ...options.headers, ...target.headers },
      maxPayload: options.maxPayload,
      handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    const abort = () => {
      socket.terminate();
      reject(new Refused("the client went away", false));
    };
    options.signal.addEventListener("abort", abort, { once: true });
    const settle = (outcome: () => void) => {
      options.signal.removeEventListener("abort", abort);
      socket.removeAllListeners("open").removeAllListeners("unexpected-response");
      outcome();
    };
    socket.once("open", () => {
      // Not read until the relay listens: the upstream's first event (session.created) comes at once.
      socket.pause();
      settle(() => resolve(socket));
    });
    socket.once("unexpected-response", (_request, response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      socket.terminate();
      settle(() => reject(new Refused(`HTTP ${status} on the upgrade`, status >= 500 || status === 429)));
    });
    socket.on("error", (error) => settle(() => reject(error instanceof Refused ? error : new Refused(error.message, true))));
  });
}

export const connectRealtimeUpstream: ConnectRealtimeUpstream = async (targets, options) => {
  for (const target of targets) {
    options.signal.throwIfAborted();
    try {
      return { socket: await connectOne(target, options), target };
    } catch (error) {
      options.signal.throwIfAborted();
      const refused = error as Refused;
      options.logger.warn({ upstream: target.label, error: refused.message }, "realtime upstream did not accept the session");
      if (!refused.failOver) {
        throw new DomainError("upstream_error", `The model's upstream refused the realtime session (${refused.message}).`);
      }
    }
  }
  throw new DomainError("upstream_unavailable", "No upstream of this model accepted the realtime session. Try again shortly.");
};
