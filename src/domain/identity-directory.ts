import { and, eq, inArray } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { newestFirstPage, type Page, type PageRequest } from "./keyset-page.js";
import { equalsIfGiven } from "./list-filters.js";
import { conversations, endUsers } from "./schema/index.js";

export interface DirectoryQuery extends PageRequest {
  /** Only this end user's rows: its conversations (of end users, itself). */
  endUserId?: string | undefined;
}

/** An account's end users, or its conversations. */
export interface Directory<Row> {
  list(accountId: string, query: DirectoryQuery): Promise<Page<Row>>;
  get(accountId: string, externalId: string): Promise<Row>;
  /** The account's rows among `ids`, in no particular order: another account's ids find nothing. */
  getMany(accountId: string, ids: readonly string[]): Promise<Row[]>;
}

/**
 * SPEC 3's end users and conversations of an account, as ops look them up:
 * each row carries its running totals (requests, input and output tokens,
 * cost), kept with every billed request.
 */
function directoryOf<T extends typeof endUsers | typeof conversations>(
  db: Db,
  table: T,
  endUserColumn: AnyPgColumn,
  what: string,
): Directory<T["$inferSelect"]> {
  // First seen never changes once written, so pages stay put while totals move.
  const newestFirst = { table, at: table.firstSeenAt, id: table.id };
  return {
    list(accountId, query) {
      const ofAccount = eq(table.accountId, accountId);
      return newestFirstPage(db, newestFirst, and(ofAccount, equalsIfGiven(endUserColumn, query.endUserId)), query, ofAccount);
    },

    async get(accountId, externalId) {
      const [row] = await db
        .select()
        .from(table as typeof endUsers)
        .where(and(eq(table.accountId, accountId), eq(table.externalId, externalId)));
      if (!row) throw new DomainError("not_found", `No ${what} ${externalId} on account ${accountId}.`, "externalId");
      return row as T["$inferSelect"];
    },

    async getMany(accountId, ids) {
      const rows = await db
        .select()
        .from(table as typeof endUsers)
        .where(and(eq(table.accountId, accountId), inArray(table.id, [...ids])));
      return rows as Array<T["$inferSelect"]>;
    },
  };
}

export function createIdentityDirectory({ db }: { db: Db }) {
  return {
    endUsers: directoryOf(db, endUsers, endUsers.id, "end user"),
    conversations: directoryOf(db, conversations, conversations.endUserId, "conversation"),
  };
}

export type IdentityDirectory = ReturnType<typeof createIdentityDirectory>;
