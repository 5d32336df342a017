ALTER TABLE "holds" ADD COLUMN "api_key_id" text;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "endpoint" text DEFAULT '/v1/chat/completions' NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "model" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "stream" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "identity" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "delivered_input_tokens" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "delivered_output_tokens" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "delivered_cost_cents" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "holds" ADD COLUMN "checkpointed_at" timestamp with time zone;