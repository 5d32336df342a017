import type { IncomingMessage } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { z } from "zod";
import type { ApiKeyAuth } from "../../domain/auth.js";
import type { Clock } from "../../domain/clock.js";
import { DomainError, isDomainError } from "../../domain/errors.js";
import { newId } from "../../domain/ids.js";
import { UpstreamError } from "../../domain/inference/provider.js";
import type { RequestLimits } from "../../domain/limits/request-limits.js";
import type { Logger } from "../../domain/logger.js";
import type { RealtimeSession, RealtimeSessions } from "../../domain/realtime/realtime-sessions.js";
import { mayBeResponseDone } from "../../domain/realtime/realtime-usage.js";
import type { ConnectRealtimeUpstream } from "../../infra/realtime-upstream-socket.js";
import { type AccessRecord, newAccessRecord, type RequestMetrics, writeAccessLine } from "../access-log.js";
import { clientAddressOf } from "../client-address.js";
import { errorBody, retryAfterHeaders } from "../errors.js";
import { identityFromHeaders } from "../identity-headers.js";
import { CLOSE, type CloseReason, closeFor } from "./close-codes.js";

// GET /v1/realtime?model=… (SPEC 10): a WebSocket relay between an integrator
// and a realtime-capable upstream, metered as one streamed call. Everything
// that can refuse the session does so before the upgrade, over plain HTTP in
// the SPEC 8 error shape, and the cheap refusals (path, handshake, key, rate
// limit) before the hold; the upstream socket is opened only for a caller the
// hold admitted. After the upgrade the session ends with a close code
// (close-codes.ts), and whatever ends it, it is billed once for the responses
// the upstream completed.

export interface RealtimeSettings {
  /** No frame either way for this long closes the session (4408). */
  idleTimeoutMs: number;
  /** A session longer than this is closed (4410). */
  maxSessionMs: number;
  /** The largest frame accepted from the client or the upstream; a bigger one closes the session (1009). */
  maxFrameBytes: number;
}

export interface RealtimeRelayDeps {
  auth: ApiKeyAuth;
  limits: Pick<RequestLimits, "admitRequest">;
  sessions: RealtimeSessions;
  connectUpstream: ConnectRealtimeUpstream;
  clock: Clock;
  logger: Logger;
  /** The access log's logger and metrics: a session is one request line, written when it ends. */
  accessLogger: Logger;
  metrics: RequestMetrics;
  trustedProxyHops: number;
  settings: RealtimeSettings;
}

export const REALTIME_PATH = "/v1/realtime";
const ROUTE = REALTIME_PATH;
/** The browser client's way to send a key, as a subprotocol (its WebSocket API cannot set headers). */
const KEY_PROTOCOL_PREFIX = "openai-insecure-api-key.";
const BETA_PROTOCOL_PREFIX = "openai-beta.";
/** The subprotocol the server accepts back when offered; the key's never is. */
const REALTIME_PROTOCOL = "realtime";
// Past this much unsent to one side, the other side's socket stops being read until it drains.
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** How long a closing handshake may take before the socket is cut. */
const CLOSE_HANDSHAKE_MS = 5_000;

const realtimeQuery = z.object({
  model: z.string({ error: "The model query parameter is required: /v1/realtime?model=…" }).min(1, "The model query parameter is empty.").max(256),
});


const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const offeredProtocols = (request: IncomingMessage): string[] =>
  (header(request, "sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);

/** The key from `Authorization: Bearer …` (server SDKs) or from the subprotocol list (browsers), as a bearer value. */
function presentedAuthorization(request: IncomingMessage): string | undefined {
  const authorization = header(request, "authorization");
  if (authorization?.trim()) return authorization;
  const key = offeredProtocols(request).find((p) => p.startsWith(KEY_PROTOCOL_PREFIX))?.slice(KEY_PROTOCOL_PREFIX.length);
  return key ? `Bearer ${key}` : undefined;
}

/** The upstream is told which protocol version the client speaks, however the client said it. */
function betaHeader(request: IncomingMessage): Record<string, string> {
  const sent = header(request, "openai-beta");
  if (sent) return { "OpenAI-Beta": sent };
  const beta = offeredProtocols(request).find((p) => p.startsWith(BETA_PROTOCOL_PREFIX))?.slice(BETA_PROTOCOL_PREFIX.length);
  return beta ? { "OpenAI-Beta": beta.replace(/-(v\d+)$/, "=$1") } : {};
}

/** A WebSocket handshake ws would accept; anything else is refused before any work (RFC 6455 4.2.1). */
function assertWebSocketHandshake(request: IncomingMessage): void {
  const valid =
    request.method === "GET" &&
    header(request, "upgrade")?.toLowerCase() === "websocket" &&
    /^[+/0-9A-Za-z]{22}==$/.test(header(request, "sec-websocket-key") ?? "") &&
    header(request, "sec-websocket-version") === "13";
  if (!valid) throw new DomainError("invalid_request_error", "Not a valid WebSocket handshake (RFC 6455, version 13).");
}

function parseModel(url: URL): string {
  const parsed = realtimeQuery.safeParse({ model: url.searchParams.get("model") ?? undefined });
  if (!parsed.success) throw new DomainError("invalid_request_error", parsed.error.issues[0]!.message, "model");
  return parsed.data.model;
}

/** SPEC 8 over the raw socket: the refusal's status and error body, then the connection closes. */
function refuse(socket: Duplex, error: DomainError, requestId: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify(errorBody(error));
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
  ];
  for (const [name, value] of retryAfterHeaders(error)) lines.push(`${name}: ${value}`);
  socket.once("finish", () => socket.destroy());
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

/** Sends one frame on, pausing the side it came from while the other side is slow to take it. */
function forward(to: WebSocket, from: WebSocket, data: RawData, isBinary: boolean): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary: isBinary }, () => {
    if (from.isPaused && to.bufferedAmount < HIGH_WATER_BYTES / 2) from.resume();
  });
  if (to.bufferedAmount > HIGH_WATER_BYTES && !from.isPaused) from.pause();
}

export function createRealtimeRelay(deps: RealtimeRelayDeps) {
  const { auth, limits, sessions, connectUpstream, clock, logger, settings } = deps;
  const requestIds = new WeakMap<IncomingMessage, string>();
  const live = new Set<WebSocket>();
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: settings.maxFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(REALTIME_PROTOCOL) ? REALTIME_PROTOCOL : false),
  });
  server.on("headers", (headers, request) => {
    const id = requestIds.get(request);
    if (id) headers.push(`x-request-id: ${id}`);
  });

  const logAccess = (record: AccessRecord, startedAt: number) => writeAccessLine(record, startedAt, deps.accessLogger, deps.metrics);

  /** The metered part of the handshake: the session's hold, then its upstream; on any refusal the call is ended unbilled. */
  async function openSession(request: IncomingMessage, url: URL, record: AccessRecord, clientGone: AbortController, authorization: string, address: string) {
    const requestId = record.requestId;
    const caller = await auth.authenticate(authorization, address);
    record.accountId = caller.account.id;
    record.keyPrefix = caller.apiKey.displayPrefix;
    // SPEC 6: a session counts as one request against the key's minute.
    await limits.admitRequest(caller);
    const requestedModel = parseModel(url);
    const session = await sessions.open({
      ctx: { requestId, caller, identity: identityFromHeaders((name) => header(request, name)), endpoint: REALTIME_PATH, startedAt: clock.now(), requestedModel, trace: record },
      clientSignal: clientGone.signal,
      recheckCaller: () => auth.authenticate(authorization, address),
    });
    try {
      const { socket, target } = await connectUpstream(session.targets, {
        signal: session.signal,
        maxPayload: settings.maxFrameBytes,
        headers: betaHeader(request),
        logger,
      });
      record.upstream = target.label;
      return { session, upstream: socket };
    } catch (error) {
      const failure = isDomainError(error) ? error : new DomainError("upstream_unavailable", "The model is unavailable right now. Try again shortly.");
      await session.end(failure);
      throw failure;
    }
  }

  function relay(client: WebSocket, upstream: WebSocket, session: RealtimeSession, clientGone: AbortController, requestId: string, onEnd: () => void): void {
    live.add(client);
    live.add(upstream);
    let finished = false;
    let lastFrameAt = performance.now();
    const touch = () => void (lastFrameAt = performance.now());

    const finish = (close: CloseReason | null, cause?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(idleTimer);
      clearTimeout(sessionTimer);
      session.signal.removeEventListener("abort", onAbort);
      if (close && client.readyState === WebSocket.OPEN) client.close(close.code, close.reason);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000, "session_ended");
      else upstream.terminate();
      // A peer that never answers the closing handshake does not keep its socket.
      setTimeout(() => {
        client.terminate();
        upstream.terminate();
      }, CLOSE_HANDSHAKE_MS).unref();
      void session.end(cause).finally(() => {
        live.delete(client);
        live.delete(upstream);
        onEnd();
      });
    };

    const onAbort = () => {
      // The client's own going is seen by its socket; an abort without it is the server shutting down.
      if (!clientGone.signal.aborted) finish(CLOSE.serverRestarting, new DomainError("service_unavailable", "The server is restarting."));
    };
    session.signal.addEventListener("abort", onAbort, { once: true });
    session.watchCaller((reason) => finish(closeFor(reason), reason));

    const checkIdle = () => {
      const idleMs = performance.now() - lastFrameAt;
      if (idleMs >= settings.idleTimeoutMs) return finish(CLOSE.idleTimeout);
      idleTimer = setTimeout(checkIdle, settings.idleTimeoutMs - idleMs);
    };
    let idleTimer = setTimeout(checkIdle, settings.idleTimeoutMs);
    const sessionTimer = setTimeout(() => finish(CLOSE.maxSessionTime), settings.maxSessionMs);

    client.on("message", (data, isBinary) => {
      touch();
      forward(upstream, client, data, isBinary);
    });
    upstream.on("message", (data, isBinary) => {
      touch();
      forward(client, upstream, data, isBinary);
      // Only a response.done is read whole: the rest (audio deltas, mostly) passes through unparsed.
      if (isBinary || !mayBeResponseDone(data as Buffer)) return;
      session.upstreamEvent(data.toString()).catch((error: unknown) => {
        finish(isDomainError(error) ? closeFor(error) : CLOSE.internal, error);
      });
    });
    client.on("error", (error: Error & { code?: string }) => {
      // ws closes with 1009 itself; the session is recorded as refused for it.
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        finish(null, new DomainError("request_too_large", `A frame was larger than ${settings.maxFrameBytes} bytes.`));
      }
    });
    upstream.on("error", (error) => logger.warn({ err: error, requestId }, "realtime upstream socket error"));
    client.on("close", (code) => finish(null, code === 1000 || code === 1001 || code === 1005 ? undefined : null));
    upstream.on("close", (code, reason) => {
      if (code === 1000) return finish(CLOSE.normal);
      finish(CLOSE.upstreamFailed, new UpstreamError(`the upstream closed the session (${code} ${reason.toString().slice(0, 100)})`, "unavailable", false));
    });
    // Held since it opened, so nothing it sent before the client's upgrade was lost.
    if (upstream.readyState === WebSocket.OPEN) upstream.resume();
    else finish(CLOSE.upstreamFailed, new UpstreamError("the upstream closed the session before it began", "unavailable", false));
  }

  async function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const startedAt = performance.now();
    const requestId = newId.request();
    // One access log line per session, with the same fields as every other request's.
    const record = newAccessRecord(requestId, "GET", ROUTE);
    const clientGone = new AbortController();
    socket.on("error", () => {});
    socket.once("close", () => clientGone.abort());
    let opened: { session: RealtimeSession; upstream: WebSocket };
    try {
      const url = new URL(request.url ?? "/", "http://localhost");
      if (url.pathname !== REALTIME_PATH) {
        record.route = "/*";
        throw new DomainError("not_found", `No WebSocket endpoint at ${url.pathname}. Realtime sessions are at ${REALTIME_PATH}.`);
      }
      assertWebSocketHandshake(request);
      const address = clientAddressOf(request.socket.remoteAddress, header(request, "x-forwarded-for"), deps.trustedProxyHops);
      // Authentication comes first, as on every /v1 path: an anonymous caller learns nothing else.
      opened = await openSession(request, url, record, clientGone, presentedAuthorization(request) ?? "", address);
    } catch (error) {
      const refusal = isDomainError(error) ? error : new DomainError("internal_error", "The server had an error while processing your request.");
      if (!isDomainError(error)) logger.error({ err: error, requestId }, "realtime handshake failed");
      record.status = refusal.status;
      refuse(socket, refusal, requestId);
      logAccess(record, startedAt);
      return;
    }
    const { session, upstream } = opened;
    if (clientGone.signal.aborted || socket.destroyed) {
      upstream.terminate();
      await session.end(null);
      record.status = 499;
      logAccess(record, startedAt);
      return;
    }
    requestIds.set(request, requestId);
    // Synchronous: the callback has run on return, unless ws refused the handshake itself (400).
    let upgraded = false;
    server.handleUpgrade(request, socket, head, (client) => {
      upgraded = true;
      record.status = 101;
      relay(client, upstream, session, clientGone, requestId, () => logAccess(record, startedAt));
    });
    if (!upgraded) {
      upstream.terminate();
      await session.end(new DomainError("invalid_request_error", "The WebSocket handshake was refused."));
      record.status = 400;
      logAccess(record, startedAt);
    }
  }

  return {
    /** Node's `upgrade` event: a WebSocket to /v1/realtime, or a refusal in the SPEC 8 shape. */
    upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
      handleUpgrade(request, socket, head).catch((error: unknown) => {
        logger.error({ err: error }, "realtime upgrade failed");
        socket.destroy();
      });
    },
    /** Cuts every session's sockets (after the drain, or in tests); each session still ends, billed, once. */
    closeAll(): void {
      for (const socket of live) socket.terminate();
    },
  };
}

export type RealtimeRelay = ReturnType<typeof createRealtimeRelay>;
