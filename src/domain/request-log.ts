import type { Db } from "./db.js";
import { type RequestStatus, requests } from "./schema/index.js";

/**
 * A request refused before it held any money, as the request log keeps it
 * (SPEC 2: its id is the x-request-id). Billed requests are recorded with
 * their charge when their hold is closed (hold-settlement.ts).
 */
export interface UnbilledRequest {
  requestId: string;
  accountId: string;
  apiKeyId: string | null;
  endpoint: string;
  model: string;
  stream: boolean;
  status: RequestStatus;
  httpStatus: number;
  errorCode: string | null;
  startedAt: Date;
  endedAt: Date;
}

export function createRequestLog({ db }: { db: Db }) {
  return {
    /** Writing the same request twice (a retry after a commit whose answer was lost) keeps the first. */
    async recordUnbilled(record: UnbilledRequest): Promise<void> {
      await db
        .insert(requests)
        .values({
          id: record.requestId,
          accountId: record.accountId,
          apiKeyId: record.apiKeyId,
          endpoint: record.endpoint,
          model: record.model,
          stream: record.stream,
          status: record.status,
          httpStatus: record.httpStatus,
          errorCode: record.errorCode,
          latencyMs: Math.max(0, Math.min(2_147_483_647, record.endedAt.getTime() - record.startedAt.getTime())),
          createdAt: record.endedAt,
        })
        .onConflictDoNothing({ target: requests.id });
    },
  };
}

export type RequestLog = ReturnType<typeof createRequestLog>;
