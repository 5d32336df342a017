import { index, pgTable, text } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { timestampTz } from "./columns.js";

export type ApiKeyStatus = "active" | "revoked";

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    name: text("name").notNull(),
    // SHA-256 of the full key; the key itself is never stored (SPEC 4).
    hash: text("hash").notNull().unique(),
    displayPrefix: text("display_prefix").notNull(),
    displaySuffix: text("display_suffix").notNull(),
    status: text("status").$type<ApiKeyStatus>().notNull().default("active"),
    allowedModels: text("allowed_models").array(),
    expiresAt: timestampTz("expires_at"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    lastUsedAt: timestampTz("last_used_at"),
    revokedAt: timestampTz("revoked_at"),
  },
  (t) => [index("api_keys_account_idx").on(t.accountId, t.status)],
);

export type ApiKey = typeof apiKeys.$inferSelect;
