import { sql } from "drizzle-orm";
import type { DbOrTx } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import { conversations, endUsers } from "./schema/index.js";

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
  const identity: EndUserIdentity = {};
  const userId = headers.userId ?? body.user;
  const userName = headers.userName ?? body.user_name;
  if (userId) identity.userId = userId;
  if (userName) identity.userName = userName;
  if (headers.sessionId) identity.sessionId = headers.sessionId;
  for (const [field, value] of Object.entries(identity)) {
    const param = field === "userName" ? "user_name" : field === "userId" ? "user" : "X-Session-Id";
    if (value.length > MAX_IDENTITY_LENGTH) {
      throw new DomainError("invalid_request_error", `${param} must be at most ${MAX_IDENTITY_LENGTH} characters.`, param);
    }
    // Refused here, before any money moves: PostgreSQL text cannot hold NUL, so it
    // would fail the record of a request already charged.
    if (value.includes("\u0000")) {
      throw new DomainError("invalid_request_error", `${param} must not contain NUL characters.`, param);
    }
  }
  return identity;
}

export interface UsageTotalsDelta {
  inputTokens: number;
  outputTokens: number;
  costCents: number;
  at: Date;
}

/**
 * Creates the end user and conversation on first sight and adds this request
 * to their running totals, one upsert each; returns their ids for the request log.
 */
export async function recordIdentityUsage(
  tx: DbOrTx,
  accountId: string,
  identity: EndUserIdentity,
  delta: UsageTotalsDelta,
): Promise<{ endUserId: string | null; conversationId: string | null }> {
  const totals = {
    requestCount: 1,
    inputTokens: delta.inputTokens,
    outputTokens: delta.outputTokens,
    costCents: delta.costCents,
    firstSeenAt: delta.at,
    lastSeenAt: delta.at,
  };
  const addTotals = (table: typeof endUsers | typeof conversations) => ({
    requestCount: sql`${table.requestCount} + 1`,
    inputTokens: sql`${table.inputTokens} + ${delta.inputTokens}`,
    outputTokens: sql`${table.outputTokens} + ${delta.outputTokens}`,
    costCents: sql`${table.costCents} + ${delta.costCents}`,
    lastSeenAt: delta.at,
  });

  let endUserId: string | null = null;
  if (identity.userId) {
    const [row] = await tx
      .insert(endUsers)
      .values({ id: newId.endUser(), accountId, externalId: identity.userId, displayName: identity.userName, ...totals })
      .onConflictDoUpdate({
        target: [endUsers.accountId, endUsers.externalId],
        set: {
          ...addTotals(endUsers),
          displayName: identity.userName ? identity.userName : sql`${endUsers.displayName}`,
        },
      })
      .returning({ id: endUsers.id });
    endUserId = row!.id;
  }

  let conversationId: string | null = null;
  if (identity.sessionId) {
    const [row] = await tx
      .insert(conversations)
      .values({ id: newId.conversation(), accountId, externalId: identity.sessionId, endUserId, ...totals })
      .onConflictDoUpdate({
        target: [conversations.accountId, conversations.externalId],
        set: { ...addTotals(conversations), endUserId: endUserId ?? sql`${conversations.endUserId}` },
      })
      .returning({ id: conversations.id });
    conversationId = row!.id;
  }
  return { endUserId, conversationId };
}
