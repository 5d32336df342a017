import { createMiddleware } from "hono/factory";
import type { ApiCaller, ApiKeyAuth } from "../domain/auth.js";

export interface ApiCallerVariables {
  caller: ApiCaller;
}

export const apiKeyAuth = (auth: ApiKeyAuth) =>
  createMiddleware<{ Variables: ApiCallerVariables }>(async (c, next) => {
    c.set("caller", await auth.authenticate(c.req.header("authorization")));
    await next();
  });
