ALTER TABLE "usage_rollups" DROP CONSTRAINT "usage_rollups_bucket_key";--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD COLUMN "grain" text NOT NULL;--> statement-breakpoint
CREATE INDEX "usage_rollups_end_user_idx" ON "usage_rollups" USING btree ("account_id","end_user_id","bucket_start") WHERE "usage_rollups"."grain" = 'end_user_quarter';--> statement-breakpoint
CREATE INDEX "usage_rollups_conversation_idx" ON "usage_rollups" USING btree ("account_id","conversation_id","bucket_start") WHERE "usage_rollups"."grain" = 'conversation_quarter';--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_bucket_key" UNIQUE NULLS NOT DISTINCT("account_id","grain","bucket_start","model","api_key_id","end_user_id","conversation_id");