CREATE TABLE "top_ups" (
	"id" text PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"amount_cents" bigint NOT NULL,
	"currency" text DEFAULT 'usd' NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"checkout_session_id" text,
	"checkout_url" text,
	"payment_intent_id" text,
	"credited_cents" bigint DEFAULT 0 NOT NULL,
	"refunded_cents" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"paid_at" timestamp with time zone,
	CONSTRAINT "top_ups_checkout_session_id_unique" UNIQUE("checkout_session_id"),
	CONSTRAINT "top_ups_payment_intent_id_unique" UNIQUE("payment_intent_id"),
	CONSTRAINT "top_ups_amount_positive" CHECK ("top_ups"."amount_cents" > 0),
	CONSTRAINT "top_ups_refund_within_credit" CHECK ("top_ups"."refunded_cents" >= 0 and "top_ups"."refunded_cents" <= "top_ups"."credited_cents")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups" (
	"account_id" text NOT NULL,
	"grain" text NOT NULL,
	"bucket_start" timestamp with time zone NOT NULL,
	"api_key_id" text,
	"model" text,
	"end_user_id" text,
	"conversation_id" text,
	"requests" bigint DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_cents" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_rollups_bucket_key" UNIQUE NULLS NOT DISTINCT("account_id","grain","bucket_start","model","api_key_id","end_user_id","conversation_id") INCLUDE ("requests","input_tokens","output_tokens","cost_cents")
);
--> statement-breakpoint
ALTER TABLE "accounts" DROP CONSTRAINT "accounts_balance_non_negative";--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "claim_token_hash" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "claim_token_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "top_ups_account_created_idx" ON "top_ups" USING btree ("account_id","created_at");--> statement-breakpoint
CREATE INDEX "usage_rollups_end_user_idx" ON "usage_rollups" USING btree ("account_id","end_user_id","bucket_start") INCLUDE ("api_key_id","model","requests","input_tokens","output_tokens","cost_cents") WHERE "usage_rollups"."grain" = 'end_user_quarter';--> statement-breakpoint
CREATE INDEX "usage_rollups_conversation_idx" ON "usage_rollups" USING btree ("account_id","grain","conversation_id","bucket_start") INCLUDE ("api_key_id","model","end_user_id","requests","input_tokens","output_tokens","cost_cents") WHERE "usage_rollups"."grain" in ('conversation_hour', 'conversation_quarter');--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_claim_token_hash_unique" UNIQUE("claim_token_hash");--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_debit_keeps_balance" CHECK ("ledger_entries"."amount_cents" >= 0 or "ledger_entries"."balance_after_cents" >= 0 or ("ledger_entries"."kind" = 'refund' and "ledger_entries"."idempotency_key" like 'stripe-refund:%'));
--> statement-breakpoint
-- usage_rollups' key and the end-user and conversation indexes above carry the
-- sums (INCLUDE, which drizzle's schema cannot say: the schema file declares them
-- without it): the series reads a year of one account's rows from the index alone,
-- a few thousand pages, where the heap interleaves every account's rows in time order.

-- usage_rollups (src/domain/schema/usage-rollups.ts) follows the request log in
-- the transaction that changes it: statement-level triggers hand over the rows a
-- statement inserted, updated or deleted (transition tables), and one aggregated
-- upsert per statement applies them, so a batch of settled holds costs one more
-- statement, not one per request, and aggregating first means one upsert never
-- meets the same rollup row twice. The app only inserts requests; the update and
-- delete triggers keep the sums right for whoever changes the log by hand.

-- plpgsql, not sql: plpgsql keeps the upsert's plan for the session's next calls.
CREATE FUNCTION usage_rollups_add(changes requests[], sign bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_rollups AS u (account_id, grain, bucket_start, api_key_id, model, end_user_id, conversation_id,
    requests, input_tokens, output_tokens, cost_cents)
  SELECT r.account_id, g.grain,
    -- date_bin, not date_trunc: independent of the session's time zone.
    date_bin(CASE WHEN g.grain IN ('account_hour', 'key_model_hour', 'conversation_hour') THEN interval '1 hour' ELSE interval '15 minutes' END,
      r.created_at, timestamptz '2000-01-01 00:00:00+00'),
    CASE WHEN g.grain <> 'account_hour' THEN r.api_key_id END,
    CASE WHEN g.grain <> 'account_hour' THEN r.model END,
    CASE WHEN g.grain IN ('end_user_quarter', 'conversation_hour', 'conversation_quarter') THEN r.end_user_id END,
    CASE WHEN g.grain IN ('conversation_hour', 'conversation_quarter') THEN r.conversation_id END,
    sign * count(*), sign * sum(r.input_tokens), sign * sum(r.output_tokens), sign * sum(r.cost_cents)
  FROM unnest(changes) r
  JOIN (VALUES ('account_hour'), ('key_model_hour'), ('key_model_quarter'), ('end_user_quarter'),
    ('conversation_hour'), ('conversation_quarter')) g(grain)
    ON g.grain IN ('account_hour', 'key_model_hour', 'key_model_quarter')
    OR (g.grain = 'end_user_quarter' AND r.end_user_id IS NOT NULL)
    OR (g.grain IN ('conversation_hour', 'conversation_quarter') AND r.conversation_id IS NOT NULL)
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  -- In the key's order: concurrent statements (a settle, an unbilled request's record) lock
  -- the rollup rows they share in the same order, so they wait for each other, never deadlock.
  ORDER BY 1, 2, 3, 5, 4, 6, 7
  ON CONFLICT ON CONSTRAINT usage_rollups_bucket_key DO UPDATE SET
    requests = u.requests + excluded.requests,
    input_tokens = u.input_tokens + excluded.input_tokens,
    output_tokens = u.output_tokens + excluded.output_tokens,
    cost_cents = u.cost_cents + excluded.cost_cents;
END $$;
--> statement-breakpoint
CREATE FUNCTION usage_rollups_follow_requests() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM usage_rollups_add(array(SELECT o::requests FROM old_requests o), -1);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM usage_rollups_add(array(SELECT n::requests FROM new_requests n), 1);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER requests_roll_up_inserts AFTER INSERT ON requests
  REFERENCING NEW TABLE AS new_requests FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_follow_requests();
--> statement-breakpoint
CREATE TRIGGER requests_roll_up_updates AFTER UPDATE ON requests
  REFERENCING OLD TABLE AS old_requests NEW TABLE AS new_requests FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_follow_requests();
--> statement-breakpoint
CREATE TRIGGER requests_roll_up_deletes AFTER DELETE ON requests
  REFERENCING OLD TABLE AS old_requests FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_follow_requests();
--> statement-breakpoint
-- The log so far, a week of one account at a time so no step holds much of it in memory;
-- the triggers above already hold the lock that keeps new rows out until this commits.
DO $$
DECLARE
  account record;
  week timestamptz;
BEGIN
  FOR account IN SELECT account_id, min(created_at) AS first, max(created_at) AS last FROM requests GROUP BY account_id LOOP
    week := account.first;
    WHILE week <= account.last LOOP
      PERFORM usage_rollups_add(array(SELECT r FROM requests r
        WHERE r.account_id = account.account_id AND r.created_at >= week AND r.created_at < week + interval '7 days'), 1);
      week := week + interval '7 days';
    END LOOP;
  END LOOP;
END $$;
