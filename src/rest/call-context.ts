import type { Context } from "hono";
import type { CallContext } from "../domain/metering/metered-call.js";
import type { CallTraceVariables } from "./access-log.js";
import type { ApiCallerVariables } from "./api-key-auth.js";
import { readIdentity } from "./identity-headers.js";
import type { RequestIdVariables } from "./request-id.js";

export type MeteredEnv = { Variables: RequestIdVariables & ApiCallerVariables & CallTraceVariables };

/** Who is asking, for whom (SPEC 3: the identity headers win over the body's fields), and where: a metered call's context. */
export const callContextOf = (
  c: Context<MeteredEnv>,
  endpoint: string,
  body: { user?: string | undefined; user_name?: string | undefined },
): Omit<CallContext, "requestedModel"> => ({
  requestId: c.get("requestId"),
  caller: c.get("caller"),
  identity: readIdentity(c, body),
  endpoint,
  startedAt: c.get("requestStartedAt"),
  trace: c.get("callTrace"),
});
