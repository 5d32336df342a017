import { index, jsonb, pgTable, text } from "drizzle-orm/pg-core";
import { timestampTz } from "./columns.js";

/**
 * One row per ops mutation that committed (SPEC 12): who did what, with what
 * result. Written in the transaction of the change itself, so a change never
 * commits without its row. Secrets are redacted before they get here.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: text("id").primaryKey(),
    /** The name of the ops token that was presented. */
    actor: text("actor").notNull(),
    /** The tRPC path, e.g. `credits.adjust`. */
    procedure: text("procedure").notNull(),
    /** As sent, secrets redacted; null when the call had no input. */
    input: jsonb("input"),
    /** What the procedure returned, secrets redacted. */
    result: jsonb("result"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
  },
  (t) => [index("audit_log_created_idx").on(t.createdAt, t.id), index("audit_log_actor_created_idx").on(t.actor, t.createdAt)],
);

export type AuditEntry = typeof auditLog.$inferSelect;
