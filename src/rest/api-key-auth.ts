import { createMiddleware } from "hono/factory";
import type { ApiCaller, ApiKeyAuth } from "../domain/auth.js";
import type { ClientAddressVariables } from "./client-address.js";

export interface ApiCallerVariables {
  caller: ApiCaller;
}

export const apiKeyAuth = (auth: ApiKeyAuth) =>
  createMiddleware<{ Variables: ApiCallerVariables & ClientAddressVariables }>(async (c, next) => {
    c.set("caller", await auth.authenticate(c.req.header("authorization"), c.get("clientAddress")));
    await next();
  });
