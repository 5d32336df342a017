import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { newestFirstPage, type Page, type PageRequest } from "./keyset-page.js";
import { equalsIfGiven, withinIfGiven } from "./list-filters.js";
import { type RequestRecord, type RequestStatus, requests } from "./schema/index.js";

export interface RequestQuery extends PageRequest {
  accountId?: string | undefined;
  keyId?: string | undefined;
  /** The public model name the request asked for. */
  model?: string | undefined;
  status?: RequestStatus | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

const newestFirst = { table: requests, at: requests.createdAt, id: requests.id };

/** The request log as ops read it (SPEC 12): one request by its x-request-id, or a filtered history. */
export function createRequestHistory({ db }: { db: Db }) {
  return {
    async get(requestId: string): Promise<RequestRecord> {
      const [request] = await db.select().from(requests).where(eq(requests.id, requestId));
      if (!request) throw new DomainError("not_found", `No request ${requestId}.`, "requestId");
      return request;
    },

    /** The account's requests among `ids`, in no particular order: another account's ids find nothing. */
    getMany(accountId: string, ids: readonly string[]): Promise<RequestRecord[]> {
      return db
        .select()
        .from(requests)
        .where(and(eq(requests.accountId, accountId), inArray(requests.id, [...ids])));
    },

    list(query: RequestQuery): Promise<Page<RequestRecord>> {
      const filters = and(
        equalsIfGiven(requests.accountId, query.accountId),
        equalsIfGiven(requests.apiKeyId, query.keyId),
        equalsIfGiven(requests.model, query.model),
        equalsIfGiven(requests.status, query.status),
        withinIfGiven(requests.createdAt, query),
      );
      return newestFirstPage(db, newestFirst, filters, query);
    },
  };
}

export type RequestHistory = ReturnType<typeof createRequestHistory>;
