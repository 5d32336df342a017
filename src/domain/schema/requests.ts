import { boolean, index, integer, pgTable, text } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { apiKeys } from "./api-keys.js";
import { cents, timestampTz, tokens } from "./columns.js";
import { conversations, endUsers } from "./identity.js";

/**
 * cancelled: the client went away; interrupted: the server stopped (crash or
 * shutdown) before the request ended, and it was billed up to its last checkpoint.
 */
export type RequestStatus = "succeeded" | "cancelled" | "failed" | "interrupted";

/** One row per billed or failed API request: the request log (SPEC 2, x-request-id). */
export const requests = pgTable(
  "requests",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    apiKeyId: text("api_key_id").references(() => apiKeys.id),
    endpoint: text("endpoint").notNull(),
    model: text("model").notNull(),
    upstreamModel: text("upstream_model"),
    endUserId: text("end_user_id").references(() => endUsers.id),
    conversationId: text("conversation_id").references(() => conversations.id),
    stream: boolean("stream").notNull().default(false),
    inputTokens: tokens("input_tokens").notNull().default(0),
    outputTokens: tokens("output_tokens").notNull().default(0),
    costCents: cents("cost_cents").notNull().default(0),
    status: text("status").$type<RequestStatus>().notNull(),
    httpStatus: integer("http_status").notNull(),
    errorCode: text("error_code"),
    latencyMs: integer("latency_ms").notNull(),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("requests_account_created_idx").on(t.accountId, t.createdAt),
    index("requests_key_created_idx").on(t.apiKeyId, t.createdAt),
  ],
);

export type RequestRecord = typeof requests.$inferSelect;
