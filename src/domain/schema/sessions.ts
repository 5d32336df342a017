import { index, pgTable, text } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { timestampTz } from "./columns.js";

/** Dashboard sign-in sessions: opaque tokens, stored hashed, with expiry (SPEC 11). */
export const dashboardSessions = pgTable(
  "dashboard_sessions",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    tokenHash: text("token_hash").notNull().unique(),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    expiresAt: timestampTz("expires_at").notNull(),
    revokedAt: timestampTz("revoked_at"),
  },
  (t) => [index("dashboard_sessions_account_idx").on(t.accountId)],
);
