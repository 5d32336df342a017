import type { Context } from "hono";
import { decodeIdentityHeader, type EndUserIdentity, mergeIdentity } from "../domain/identity.js";

/** SPEC 3: the identity a request's percent-encoded headers name; `header` reads one by its lower-case name. */
export function identityFromHeaders(header: (name: string) => string | undefined): EndUserIdentity {
  const identity: EndUserIdentity = {};
  const userId = decodeIdentityHeader("X-User-Id", header("x-user-id"));
  const userName = decodeIdentityHeader("X-User-Name", header("x-user-name"));
  const sessionId = decodeIdentityHeader("X-Session-Id", header("x-session-id"));
  if (userId) identity.userId = userId;
  if (userName) identity.userName = userName;
  if (sessionId) identity.sessionId = sessionId;
  return identity;
}

/** SPEC 3: identity from percent-encoded headers, which win over body fields. */
export const readIdentity = (c: Context, body: { user?: string | undefined; user_name?: string | undefined }): EndUserIdentity =>
  mergeIdentity(identityFromHeaders((name) => c.req.header(name)), body);
