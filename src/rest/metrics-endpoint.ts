import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { DomainError } from "../domain/errors.js";
import type { AuthFailureLimits } from "../domain/limits/auth-failure-limits.js";
import type { ClientAddressVariables } from "./client-address.js";

/** GET /metrics: Prometheus' text format. */
export const metricsEndpoint = (metrics: { contentType: string; exposition(): Promise<string> }) => async (c: Context) =>
  c.body(await metrics.exposition(), 200, { "content-type": metrics.contentType });

/**
 * Where /metrics shares the public port, it wants the ops token, under the
 * same per-address failure limit as the ops API, so it is no way to guess it.
 */
export const opsTokenRequired = (isOpsToken: (authorization: string | undefined) => boolean, failures: AuthFailureLimits) =>
  createMiddleware<{ Variables: ClientAddressVariables }>(async (c, next) => {
    const address = c.get("clientAddress");
    failures.refuseIfOverLimit(address);
    if (!isOpsToken(c.req.header("authorization"))) {
      await failures.countFailure(address);
      throw new DomainError("unauthorized", "This endpoint needs the ops token: send `Authorization: Bearer <ops token>`.");
    }
    await next();
  });
