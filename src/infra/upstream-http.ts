import { setTimeout as delay } from "node:timers/promises";
import { Agent, type Dispatcher } from "undici";

// Keep-alive HTTP to the model upstreams (SPEC 9). One undici Agent keeps a
// connection pool per origin, so every request to an upstream reuses warm
// connections instead of paying a TCP (and TLS) handshake each time.

export interface UpstreamHttpOptions {
  /** Open connections per upstream origin; each carries one request at a time. */
  connectionsPerOrigin?: number;
  /** How long an idle connection is kept (upstreams' own keep-alive hints may shorten it). */
  keepAliveTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** On close, how long in-flight requests may finish before their connections are cut. */
  closeGraceMs?: number;
}

export interface UpstreamHttp {
  readonly dispatcher: Dispatcher;
  close(): Promise<void>;
}

export function createUpstreamHttp(options: UpstreamHttpOptions = {}): UpstreamHttp {
  const agent = new Agent({
    connections: options.connectionsPerOrigin ?? 256,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    keepAliveMaxTimeout: 10 * 60_000,
    connect: { timeout: options.connectTimeoutMs ?? 10_000 },
  });
  const closeGraceMs = options.closeGraceMs ?? 5_000;
  return {
    dispatcher: agent,
    async close() {
      // A graceful close waits for streams that may run for minutes; shutdown should not.
      const closed = agent.close().then(() => true);
      if (!(await Promise.race([closed, delay(closeGraceMs, false, { ref: false })]))) await agent.destroy();
    },
  };
}
