CREATE TABLE "weekly_chat_usage" (
	"account_id" text NOT NULL,
	"week_start" date NOT NULL,
	"used" bigint DEFAULT 0 NOT NULL,
	"reserved" bigint DEFAULT 0 NOT NULL,
	"boosts" bigint DEFAULT 0 NOT NULL,
	"plan_cap" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "weekly_chat_usage_account_id_week_start_pk" PRIMARY KEY("account_id","week_start"),
	CONSTRAINT "weekly_chat_usage_counts_non_negative" CHECK ("weekly_chat_usage"."used" >= 0 and "weekly_chat_usage"."reserved" >= 0 and "weekly_chat_usage"."boosts" >= 0)
);
--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "quota_week" date;--> statement-breakpoint
ALTER TABLE "weekly_chat_usage" ADD CONSTRAINT "weekly_chat_usage_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;