import { createHash, timingSafeEqual } from "node:crypto";
import { parse, serialize } from "hono/utils/cookie";

const SESSION_COOKIE = "sentx_session";
export const CSRF_HEADER = "x-csrf-token";

// Only the dashboard API reads the session; no other path of the server ever sees the cookie.
const attributes = { path: "/graphql", httpOnly: true, secure: true, sameSite: "Lax" } as const;

/** The Set-Cookie value that carries a new session to a browser, for as long as the session lives. */
export const sessionCookie = (token: string, expiresAt: Date): string => serialize(SESSION_COOKIE, token, { ...attributes, expires: expiresAt });

export const clearedSessionCookie = (): string => serialize(SESSION_COOKIE, "", { ...attributes, maxAge: 0 });

export const sessionTokenFromCookie = (request: Request): string | undefined => {
  const header = request.headers.get("cookie");
  return header ? parse(header, SESSION_COOKIE)[SESSION_COOKIE] : undefined;
};

/**
 * The CSRF token of a session: derived from the session token, so it needs no
 * storage, and only a page that was given it (the dashboard, at sign-in) can
 * send it: another site's page can make the browser send the cookie, but can
 * neither read the cookie nor, without CORS, set this header.
 */
export const csrfTokenFor = (sessionToken: string): string =>
  createHash("sha256").update(`csrf:${sessionToken}`).digest("base64url");

export function csrfTokenMatches(sessionToken: string, presented: string | null): boolean {
  if (presented === null) return false;
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
