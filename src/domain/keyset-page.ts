import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn, PgTable } from "drizzle-orm/pg-core";
import type { DbOrTx } from "./db.js";
import { DomainError } from "./errors.js";

export interface PageRequest {
  limit: number;
  /** The previous page's nextCursor. */
  cursor?: string | undefined;
}

export interface Page<Row> {
  data: Row[];
  /** Pass it back as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** How a table is listed newest first: by a time that never changes once written, then by id to break ties. */
export interface NewestFirst<T extends PgTable> {
  table: T;
  at: AnyPgColumn;
  id: AnyPgColumn;
}

/**
 * One page of rows matching `where`, newest first. The cursor is the id of the
 * last row of the page before, so rows added meanwhile never shift a page.
 * A cursor outside `cursorScope` (say, another account's row) is as unknown as
 * a made-up one, so a cursor never tells whether someone else's row exists.
 */
export async function newestFirstPage<T extends PgTable>(
  db: DbOrTx,
  { table, at, id }: NewestFirst<T>,
  where: SQL | undefined,
  page: PageRequest,
  cursorScope?: SQL,
): Promise<Page<T["$inferSelect"]>> {
  let beyondCursor: SQL | undefined;
  if (page.cursor !== undefined) {
    const [known] = await db.select({ id }).from(table as PgTable).where(and(eq(id, page.cursor), cursorScope));
    if (!known) throw new DomainError("invalid_request_error", "No such cursor: pass the nextCursor of the page before.", "cursor");
    // Compared in SQL: the database keeps microseconds, a JS Date only milliseconds.
    beyondCursor = sql`(${at}, ${id}) < (select ${at}, ${id} from ${table} where ${id} = ${page.cursor})`;
  }
  const rows = (await db
    .select()
    .from(table as PgTable)
    .where(and(where, beyondCursor))
    .orderBy(desc(at), desc(id))
    .limit(page.limit + 1)) as Array<T["$inferSelect"] & { id: string }>;
  const data = rows.slice(0, page.limit);
  return { data, nextCursor: rows.length > page.limit ? data.at(-1)!.id : null };
}
