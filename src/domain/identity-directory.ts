import { and, eq } from "drizzle-orm";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { newestFirstPage, type Page, type PageRequest } from "./keyset-page.js";
import { conversations, endUsers } from "./schema/index.js";

/** An account's end users, or its conversations. */
export interface Directory<Row> {
  list(accountId: string, page: PageRequest): Promise<Page<Row>>;
  get(accountId: string, externalId: string): Promise<Row>;
}

/**
 * SPEC 3's end users and conversations of an account, as ops look them up:
 * each row carries its running totals (requests, input and output tokens,
 * cost), kept with every billed request.
 */
function directoryOf<T extends typeof endUsers | typeof conversations>(db: Db, table: T, what: string): Directory<T["$inferSelect"]> {
  // First seen never changes once written, so pages stay put while totals move.
  const newestFirst = { table, at: table.firstSeenAt, id: table.id };
  return {
    list: (accountId, page) =>
      newestFirstPage(db, newestFirst, eq(table.accountId, accountId), page),

    async get(accountId, externalId) {
      const [row] = await db
        .select()
        .from(table as typeof endUsers)
        .where(and(eq(table.accountId, accountId), eq(table.externalId, externalId)));
      if (!row) throw new DomainError("not_found", `No ${what} ${externalId} on account ${accountId}.`, "externalId");
      return row as T["$inferSelect"];
    },
  };
}

export function createIdentityDirectory({ db }: { db: Db }) {
  return { endUsers: directoryOf(db, endUsers, "end user"), conversations: directoryOf(db, conversations, "conversation") };
}

export type IdentityDirectory = ReturnType<typeof createIdentityDirectory>;
