import type { Db } from "./db.js";
import { type EndUserIdentity, recordIdentityUsage } from "./identity.js";
import { type RequestStatus, requests } from "./schema/index.js";

export interface RequestOutcome {
  requestId: string;
  accountId: string;
  apiKeyId: string | null;
  endpoint: string;
  model: string;
  upstreamModel: string | null;
  stream: boolean;
  inputTokens: number;
  outputTokens: number;
  costCents: number;
  status: RequestStatus;
  httpStatus: number;
  errorCode: string | null;
  latencyMs: number;
  identity: EndUserIdentity;
  at: Date;
}

/** The request log: one row per API request, plus the end user's and conversation's running totals. */
export function createRequestLog({ db }: { db: Db }) {
  return {
    async record(outcome: RequestOutcome): Promise<void> {
      const billed = outcome.costCents > 0;
      await db.transaction(async (tx) => {
        // Only billed requests count towards end users and conversations (SPEC 3).
        const ids = billed
          ? await recordIdentityUsage(tx, outcome.accountId, outcome.identity, {
              inputTokens: outcome.inputTokens,
              outputTokens: outcome.outputTokens,
              costCents: outcome.costCents,
              at: outcome.at,
            })
          : { endUserId: null, conversationId: null };
        await tx.insert(requests).values({
          id: outcome.requestId,
          accountId: outcome.accountId,
          apiKeyId: outcome.apiKeyId,
          endpoint: outcome.endpoint,
          model: outcome.model,
          upstreamModel: outcome.upstreamModel,
          endUserId: ids.endUserId,
          conversationId: ids.conversationId,
          stream: outcome.stream,
          inputTokens: outcome.inputTokens,
          outputTokens: outcome.outputTokens,
          costCents: outcome.costCents,
          status: outcome.status,
          httpStatus: outcome.httpStatus,
          errorCode: outcome.errorCode,
          latencyMs: outcome.latencyMs,
          createdAt: outcome.at,
        });
      });
    },
  };
}

export type RequestLog = ReturnType<typeof createRequestLog>;
