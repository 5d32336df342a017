import { DomainError } from "../domain/errors.js";
import type { DashboardSession, Sessions } from "../domain/sessions.js";

/** What the HTTP layer hands the dashboard API with each request. */
export interface DashboardServerContext {
  clientAddress: string;
}

export interface DashboardContext extends DashboardServerContext {
  /** The signed-in session, or null: each resolver that needs one asks `signedIn`. */
  session: DashboardSession | null;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export async function sessionOf(request: Request, sessions: Sessions): Promise<DashboardSession | null> {
  const token = BEARER.exec(request.headers.get("authorization") ?? "")?.[1];
  return token ? sessions.find(token) : null;
}

export function signedIn(context: DashboardContext): DashboardSession {
  if (!context.session) throw new DomainError("unauthorized", "Sign in first: send the session token as `Authorization: Bearer sess_…`.");
  return context.session;
}
