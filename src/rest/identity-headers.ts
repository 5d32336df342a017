import type { Context } from "hono";
import { decodeIdentityHeader, type EndUserIdentity, mergeIdentity } from "../domain/identity.js";

/** SPEC 3: identity from percent-encoded headers, which win over body fields. */
export function readIdentity(c: Context, body: { user?: string | undefined; user_name?: string | undefined }): EndUserIdentity {
  const fromHeaders: EndUserIdentity = {};
  const userId = decodeIdentityHeader("X-User-Id", c.req.header("x-user-id"));
  const userName = decodeIdentityHeader("X-User-Name", c.req.header("x-user-name"));
  const sessionId = decodeIdentityHeader("X-Session-Id", c.req.header("x-session-id"));
  if (userId) fromHeaders.userId = userId;
  if (userName) fromHeaders.userName = userName;
  if (sessionId) fromHeaders.sessionId = sessionId;
  return mergeIdentity(fromHeaders, body);
}
