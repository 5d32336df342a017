import { createMiddleware } from "hono/factory";
import { newId } from "../domain/ids.js";

export interface RequestIdVariables {
  requestId: string;
  requestStartedAt: Date;
}

/** SPEC 2: every response carries x-request-id, the id the request log keeps. */
export const requestId = (now: () => Date) =>
  createMiddleware<{ Variables: RequestIdVariables }>(async (c, next) => {
    const id = newId.request();
    c.set("requestId", id);
    c.set("requestStartedAt", now());
    c.header("x-request-id", id);
    await next();
    // A sub-app that answers with a Response of its own (GraphQL, the ops API) never saw the header above.
    if (!c.res.headers.has("x-request-id")) c.res.headers.set("x-request-id", id);
  });
