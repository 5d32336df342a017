import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../db.js";
import { apiKeys, conversations, endUsers } from "../schema/index.js";
import type { UsageDimension } from "./series-query.js";

/**
 * What the dashboard shows for each group: a key's name and prefix, an end
 * user's or a conversation's external id (the integrator's), a model's id.
 * One query for all the groups, scoped to the account.
 */
export async function groupLabels(db: Db, accountId: string, dimension: UsageDimension, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0 || dimension === "model") return new Map(ids.map((id) => [id, id]));
  if (dimension === "key") {
    const keys = await db
      .select({ id: apiKeys.id, name: apiKeys.name, prefix: apiKeys.displayPrefix })
      .from(apiKeys)
      .where(and(eq(apiKeys.accountId, accountId), inArray(apiKeys.id, ids)));
    return new Map(keys.map((key) => [key.id, `${key.name} (${key.prefix}…)`]));
  }
  const table = dimension === "endUser" ? endUsers : conversations;
  const rows = await db
    .select({ id: table.id, externalId: table.externalId })
    .from(table)
    .where(and(eq(table.accountId, accountId), inArray(table.id, ids)));
  return new Map(rows.map((row) => [row.id, row.externalId]));
}
