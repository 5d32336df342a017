import type { Db, DbOrTx } from "./db.js";
import { type EndUserIdentity, recordIdentityUsage } from "./identity.js";
import { type RequestStatus, requests } from "./schema/index.js";

/** One API request as the request log keeps it (SPEC 2: its id is the x-request-id). */
export interface RequestRecordInput {
  requestId: string;
  accountId: string;
  apiKeyId: string | null;
  endpoint: string;
  model: string;
  stream: boolean;
  inputTokens: number;
  outputTokens: number;
  /** What the ledger charged for it (0 when nothing was). */
  costCents: number;
  status: RequestStatus;
  httpStatus: number;
  errorCode: string | null;
  identity: EndUserIdentity;
  startedAt: Date;
  endedAt: Date;
}

/**
 * Writes a request's record and, for a billed one, its end user's and
 * conversation's running totals (SPEC 3), in the caller's transaction, so a
 * charge and its record commit together (SPEC 5). Writing the same request
 * twice (a retry after a commit whose answer was lost) keeps the first.
 */
export async function writeRequestRecord(tx: DbOrTx, record: RequestRecordInput): Promise<void> {
  const ids =
    record.costCents > 0
      ? await recordIdentityUsage(tx, record.accountId, record.identity, {
          inputTokens: record.inputTokens,
          outputTokens: record.outputTokens,
          costCents: record.costCents,
          at: record.endedAt,
        })
      : { endUserId: null, conversationId: null };
  await tx
    .insert(requests)
    .values({
      id: record.requestId,
      accountId: record.accountId,
      apiKeyId: record.apiKeyId,
      endpoint: record.endpoint,
      model: record.model,
      upstreamModel: null,
      endUserId: ids.endUserId,
      conversationId: ids.conversationId,
      stream: record.stream,
      inputTokens: record.inputTokens,
      outputTokens: record.outputTokens,
      costCents: record.costCents,
      status: record.status,
      httpStatus: record.httpStatus,
      errorCode: record.errorCode,
      latencyMs: Math.max(0, Math.min(2_147_483_647, record.endedAt.getTime() - record.startedAt.getTime())),
      createdAt: record.endedAt,
    })
    .onConflictDoNothing({ target: requests.id });
}

/** The request log of requests that never held money: refused before the hold, so nothing to settle. */
export function createRequestLog({ db }: { db: Db }) {
  return {
    recordUnbilled: (record: RequestRecordInput): Promise<void> => writeRequestRecord(db, { ...record, costCents: 0 }),
  };
}

export type RequestLog = ReturnType<typeof createRequestLog>;
