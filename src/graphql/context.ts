import { DomainError } from "../domain/errors.js";
import type { DashboardSession, Sessions } from "../domain/sessions.js";
import type { DashboardLoaders } from "./loaders.js";
import { CSRF_HEADER, csrfTokenMatches, sessionTokenFromCookie } from "./session-cookie.js";

/** What the HTTP layer hands the dashboard API with each request. */
export interface DashboardServerContext {
  clientAddress: string;
  /** Headers for the answer: a session's Set-Cookie. */
  responseHeaders: Headers;
}

/**
 * How the session came. A cookie is attached by the browser to any page's
 * request, so a cookie session may change things only with the page's CSRF
 * token; a Bearer token is sent only by code that holds it.
 */
export type SessionProof = "bearer" | "cookie-with-csrf" | "cookie-without-csrf";

export interface DashboardContext extends DashboardServerContext {
  /** The signed-in session, or null: each resolver that needs one asks `signedIn`. */
  session: DashboardSession | null;
  /** The session token as presented; null when there is no session. */
  sessionToken: string | null;
  proof: SessionProof | null;
  /** This request's batch loaders, reading only the session's account. */
  loaders: DashboardLoaders;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** A Bearer header wins over a cookie: a script that sends one means that session. */
export async function sessionOf(request: Request, sessions: Sessions): Promise<Pick<DashboardContext, "session" | "sessionToken" | "proof">> {
  const bearer = BEARER.exec(request.headers.get("authorization") ?? "")?.[1];
  const token = bearer ?? sessionTokenFromCookie(request);
  const session = token ? await sessions.find(token) : null;
  if (!session || !token) return { session: null, sessionToken: null, proof: null };
  const proof = bearer ? "bearer" : csrfTokenMatches(token, request.headers.get(CSRF_HEADER)) ? "cookie-with-csrf" : "cookie-without-csrf";
  return { session, sessionToken: token, proof };
}

export function signedIn(context: DashboardContext): DashboardSession {
  if (!context.session) throw new DomainError("unauthorized", "Sign in first: send the session token as `Authorization: Bearer sess_…`, or sign in from the browser for its cookie.");
  return context.session;
}
