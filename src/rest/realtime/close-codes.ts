import type { DomainError } from "../../domain/errors.js";

// How the relay closes a realtime session's WebSocket (docs/api.md). Codes in
// 4000–4999 are the application's own: the last three digits follow the HTTP
// status a plain request would have had. A reason is a short code word: a
// close frame's reason has at most 123 bytes.

export interface CloseReason {
  code: number;
  reason: string;
}

export const CLOSE = {
  /** The client ended the session, or the upstream ended it normally. */
  normal: { code: 1000, reason: "session_ended" },
  /** The upstream failed or went away mid-session. */
  upstreamFailed: { code: 1011, reason: "upstream_error" },
  /** The server is restarting (SIGTERM's drain); the session was billed for what it delivered. */
  serverRestarting: { code: 1012, reason: "server_restarting" },
  /** A failure of our own. */
  internal: { code: 1011, reason: "internal_error" },
  invalidApiKey: { code: 4401, reason: "invalid_api_key" },
  insufficientBalance: { code: 4402, reason: "insufficient_balance" },
  accountSuspended: { code: 4403, reason: "account_suspended" },
  idleTimeout: { code: 4408, reason: "idle_timeout" },
  maxSessionTime: { code: 4410, reason: "session_time_limit" },
} as const satisfies Record<string, CloseReason>;

/** The close of a session that a domain error ended. */
export function closeFor(error: DomainError): CloseReason {
  switch (error.code) {
    case "invalid_api_key":
      return CLOSE.invalidApiKey;
    case "insufficient_balance":
      return CLOSE.insufficientBalance;
    case "account_suspended":
      return CLOSE.accountSuspended;
    case "upstream_error":
    case "upstream_unavailable":
      return CLOSE.upstreamFailed;
    default:
      return CLOSE.internal;
  }
}
