import { and, eq, gte, lt, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";

// The optional filters of the ops lists: a filter not given matches everything.

export const equalsIfGiven = (column: AnyPgColumn, value: string | undefined): SQL | undefined =>
  value === undefined ? undefined : eq(column, value);

/** From `since` (inclusive) to `until` (exclusive), either end open. */
export const withinIfGiven = (column: AnyPgColumn, range: { since?: Date | undefined; until?: Date | undefined }): SQL | undefined =>
  and(range.since === undefined ? undefined : gte(column, range.since), range.until === undefined ? undefined : lt(column, range.until));
