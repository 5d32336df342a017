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
DELETE FROM usage_rollups;
--> statement-breakpoint
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
