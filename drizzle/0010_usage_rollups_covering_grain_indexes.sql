-- As 0009 did for the key's index: the end-user and conversation grains' indexes
-- carry the columns the series reads, so a year grouped by conversation reads the
-- account's conversation rows (tens of thousands) from the index alone.
DROP INDEX usage_rollups_end_user_idx;
--> statement-breakpoint
CREATE INDEX usage_rollups_end_user_idx ON usage_rollups (account_id, end_user_id, bucket_start)
  INCLUDE (api_key_id, model, requests, input_tokens, output_tokens, cost_cents) WHERE grain = 'end_user_quarter';
--> statement-breakpoint
DROP INDEX usage_rollups_conversation_idx;
--> statement-breakpoint
CREATE INDEX usage_rollups_conversation_idx ON usage_rollups (account_id, conversation_id, bucket_start)
  INCLUDE (api_key_id, model, end_user_id, requests, input_tokens, output_tokens, cost_cents) WHERE grain = 'conversation_quarter';
