-- Two changes to 0008's rollups, kept out of it because it was already committed.

-- The series reads a year of one account's rows: as an index-only scan of the
-- key's index they are a few thousand pages; fetched from the heap, where the
-- rollups of every account interleave in time order, one page each. So the key
-- carries the sums (INCLUDE, which drizzle's schema cannot say: the schema file
-- declares the same constraint without it).
ALTER TABLE usage_rollups DROP CONSTRAINT usage_rollups_bucket_key;
--> statement-breakpoint
ALTER TABLE usage_rollups ADD CONSTRAINT usage_rollups_bucket_key
  UNIQUE NULLS NOT DISTINCT (account_id, grain, bucket_start, model, api_key_id, end_user_id, conversation_id)
  INCLUDE (requests, input_tokens, output_tokens, cost_cents);
--> statement-breakpoint
-- The upsert of 0008, now in the key's order.
CREATE OR REPLACE FUNCTION usage_rollups_add(changes requests[], sign bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_rollups AS u (account_id, grain, bucket_start, api_key_id, model, end_user_id, conversation_id,
    requests, input_tokens, output_tokens, cost_cents)
  SELECT r.account_id, g.grain,
    -- date_bin, not date_trunc: independent of the session's time zone.
    date_bin(CASE g.grain WHEN 'key_model_hour' THEN interval '1 hour' ELSE interval '15 minutes' END,
      r.created_at, timestamptz '2000-01-01 00:00:00+00'),
    r.api_key_id, r.model,
    CASE WHEN g.grain IN ('end_user_quarter', 'conversation_quarter') THEN r.end_user_id END,
    CASE WHEN g.grain = 'conversation_quarter' THEN r.conversation_id END,
    sign * count(*), sign * sum(r.input_tokens), sign * sum(r.output_tokens), sign * sum(r.cost_cents)
  FROM unnest(changes) r
  JOIN (VALUES ('key_model_hour'), ('key_model_quarter'), ('end_user_quarter'), ('conversation_quarter')) g(grain)
    ON g.grain IN ('key_model_hour', 'key_model_quarter')
    OR (g.grain = 'end_user_quarter' AND r.end_user_id IS NOT NULL)
    OR (g.grain = 'conversation_quarter' AND r.conversation_id IS NOT NULL)
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
