import type { HttpBindings } from "@hono/node-server";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { CallTrace } from "../domain/call-trace.js";
import type { Logger } from "../domain/logger.js";
import type { ApiCallerVariables } from "./api-key-auth.js";
import type { RequestIdVariables } from "./request-id.js";

export interface CallTraceVariables {
  /** This request's access log record, for the domain to fill in (metered surfaces pass it in their call context). */
  callTrace: CallTrace;
}

/** What the access log counts for /metrics, once per request: it must not allocate. */
export interface RequestMetrics {
  requestServed(method: string, route: string, status: number, seconds: number): void;
}

/** One access log line: the request, who made it, and what the domain traced of it. No header, body or query is kept. */
export interface AccessRecord extends CallTrace {
  method: string;
  /** The matched route's pattern (`/v1/files/:id`), never the path: bounded, and free of ids. */
  route: string;
  status: number;
  durationMs: number;
  accountId: string | null;
  /** The key's stored display prefix (`sk-AbCd`), never the key. */
  keyPrefix: string | null;
}

/** Every field, in one order, from the start: one object shape for every line. */
export function newAccessRecord(requestId: string, method: string, route: string): AccessRecord {
  return {
    requestId,
    method,
    route,
    status: 0,
    durationMs: 0,
    accountId: null,
    keyPrefix: null,
    model: null,
    inputTokens: 0,
    outputTokens: 0,
    costCents: 0,
    upstream: null,
    attempts: 0,
    outcome: null,
    settling: undefined,
    afterSettle: undefined,
  };
}

/**
 * Counts the request in the metrics and, unless `logger` is null, writes its
 * line; while its call is still settling (a client gone mid-stream), only once
 * it has, so the line has its tokens and cost.
 */
export function writeAccessLine(record: AccessRecord, startedAt: number, logger: Logger | null, metrics: RequestMetrics): void {
  if (record.settling) return void (record.afterSettle = () => writeAccessLine(record, startedAt, logger, metrics));
  const elapsedMs = performance.now() - startedAt;
  record.durationMs = Math.round(elapsedMs * 10) / 10;
  metrics.requestServed(record.method, record.route, record.status, elapsedMs / 1000);
  logger?.info(record, "request");
}

// Load balancers and Prometheus call these every few seconds: they are counted in the metrics, not logged.
const UNLOGGED_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

type Env = { Bindings: Partial<HttpBindings>; Variables: RequestIdVariables & Partial<ApiCallerVariables> & CallTraceVariables };

/**
 * One info line per request when its response has ended (a stream's whole
 * length, so its tokens and cost are in), and its count and duration in the
 * metrics. Mount it after the request id.
 */
export function accessLog({ logger, metrics }: { logger: Logger; metrics: RequestMetrics }) {
  return createMiddleware<Env>(async (c, next) => {
    const startedAt = performance.now();
    const record = newAccessRecord(c.get("requestId"), c.req.method, "");
    c.set("callTrace", record);
    await next();

    // The last route matched is the handler's; when no handler matched, the middleware's (`/*`, `/v1/*`).
    record.route = routePath(c, -1);
    record.status = c.res.status;
    const caller = c.get("caller");
    if (caller) {
      record.accountId = caller.account.id;
      record.keyPrefix = caller.apiKey.displayPrefix;
    }
    const lineLogger = UNLOGGED_ROUTES.has(record.route) ? null : logger;
    const finish = () => writeAccessLine(record, startedAt, lineLogger, metrics);
    // The response is only ready here; Node writes its body (a stream: for minutes) after this returns.
    // A response closes once, so `on` does, without the wrapper `once` would allocate.
    const outgoing = c.env?.outgoing;
    if (outgoing && !outgoing.destroyed) outgoing.on("close", finish);
    else finish();
  });
}
