import { DomainError } from "./errors.js";
import { refuseForbiddenCharacters } from "./text-rules.js";

/** SPEC 3: who the integrator's end user is and which conversation a request belongs to. */
export interface EndUserIdentity {
  userId?: string;
  userName?: string;
  sessionId?: string;
}

const MAX_IDENTITY_LENGTH = 256;

/**
 * Header values are Latin-1, so clients percent-encode UTF-8 in them (SPEC 3):
 * `Al%C3%A9x` → `Aléx`. A malformed escape is the caller's error, never a crash.
 */
export function decodeIdentityHeader(header: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new DomainError("invalid_request_error", `Header ${header} has a malformed percent-escape.`, header);
  }
}

/** A header wins over its body field when both are sent (SPEC 3). */
export function mergeIdentity(
  headers: EndUserIdentity,
  body: { user?: string | undefined; user_name?: string | undefined },
): EndUserIdentity {
  // Every value sent is checked, the one that loses to its header too: a bad field is the caller's error either way.
  const sent: Array<[param: string, value: string | undefined]> = [
    ["user", headers.userId],
    ["user", body.user],
    ["user_name", headers.userName],
    ["user_name", body.user_name],
    ["X-Session-Id", headers.sessionId],
  ];
  for (const [param, value] of sent) if (value !== undefined) checkIdentityValue(param, value);
  const identity: EndUserIdentity = {};
  const userId = headers.userId ?? body.user;
  const userName = headers.userName ?? body.user_name;
  if (userId) identity.userId = userId;
  if (userName) identity.userName = userName;
  if (headers.sessionId) identity.sessionId = headers.sessionId;
  return identity;
}

function checkIdentityValue(param: string, value: string): void {
  if (value.length > MAX_IDENTITY_LENGTH) {
    throw new DomainError("invalid_request_error", `${param} must be at most ${MAX_IDENTITY_LENGTH} characters.`, param);
  }
  // Refused here, before any money moves: PostgreSQL cannot store NUL or an unpaired
  // surrogate, so either would fail the hold or the record of a request already charged.
  refuseForbiddenCharacters(param, value);
}
