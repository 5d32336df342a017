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
	"bucket_start" timestamp with time zone NOT NULL,
	"api_key_id" text,
	"model" text NOT NULL,
	"end_user_id" text,
	"conversation_id" text,
	"requests" bigint DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_cents" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_rollups_bucket_key" UNIQUE NULLS NOT DISTINCT("account_id","bucket_start","model","api_key_id","end_user_id","conversation_id")
);
--> statement-breakpoint
ALTER TABLE "accounts" DROP CONSTRAINT "accounts_balance_non_negative";--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "claim_token_hash" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "claim_token_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "top_ups" ADD CONSTRAINT "top_ups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "top_ups_account_created_idx" ON "top_ups" USING btree ("account_id","created_at");--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_claim_token_hash_unique" UNIQUE("claim_token_hash");--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_debit_keeps_balance" CHECK ("ledger_entries"."amount_cents" >= 0 or "ledger_entries"."balance_after_cents" >= 0 or ("ledger_entries"."kind" = 'refund' and "ledger_entries"."idempotency_key" like 'stripe-refund:%'));