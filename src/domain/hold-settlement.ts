import { sql } from "drizzle-orm";
import type { Db } from "./db.js";
import { rowsOf } from "./db.js";
import { newId } from "./ids.js";
import type { HoldStatus, RequestStatus } from "./schema/index.js";
import { accounts, conversations, endUsers, holds, ledgerEntries, requests } from "./schema/index.js";

// Ending a hold is one SQL statement (writable CTEs), so the account row is
// locked for one round trip instead of a transaction's worth: on a busy
// account every request waits for that lock (ARCHITECTURE: the hot path is
// lean). The statement does what billing.ts's invariants ask, atomically:
//
//   locked   locks the account that owns the hold (before the hold row, the
//            order every path takes), and reads its balance and holds;
//   closed   closes the hold only if it is still active, so whoever closes it
//            first (the request, a retry, or the sweeper) is the only one
//            that charges and records it;
//   charge   never more than the balance no other hold has reserved;
//   entry    the usage entry, under its idempotency key;
//   account  gives the hold back and moves the balance by exactly the entry
//            that was inserted, so the balance stays the sum of its entries;
//   end_user, conversation, record: the request record and its end user's
//            and conversation's running totals (SPEC 3), with the charge.
//
// Every step reads only from the steps before it, which fixes their order;
// PostgreSQL runs every data-modifying step, read or not, exactly once.

/** How a request ended, for its record. */
export interface RequestEnding {
  status: RequestStatus;
  httpStatus: number;
  errorCode: string | null;
  inputTokens: number;
  outputTokens: number;
}

export interface CloseHold {
  requestId: string;
  /** What the request cost; 0 charges nothing. */
  costCents: number;
  closeAs: Exclude<HoldStatus, "active">;
  ending: RequestEnding;
  now: Date;
  /** The sweeper's guard: close only a hold still past its expiry and with the checkpoint it read. */
  abandoned?: { deliveredCostCents: number };
}

export type ClosedHold =
  | { found: false }
  | { found: true; closedNow: true; chargedCents: number }
  /** Closed before: chargedCents is what its usage entry charged then. */
  | { found: true; closedNow: false; chargedCents: number };

const usageKey = (requestId: string) => `usage:${requestId}`;

export async function closeHold(db: Db, input: CloseHold): Promise<ClosedHold> {
  const { requestId, costCents, closeAs, ending, now, abandoned } = input;
  const at = sql`${now.toISOString()}::timestamptz`;
  const key = usageKey(requestId);
  const abandonedOnly = abandoned
    ? sql`and ${holds.expiresAt} < ${at} and ${holds.deliveredCostCents} = ${abandoned.deliveredCostCents}::bigint`
    : sql``;
  const result = await db.execute(sql`
    with locked as (
      select h.id as hold_id, h.account_id, a.balance_cents, a.held_cents
      from ${holds} h join ${accounts} a on a.id = h.account_id
      where h.request_id = ${requestId} for update of a
    ),
    closed as (
      update ${holds} set status = ${closeAs}, closed_at = ${at}
      from locked where ${holds.id} = locked.hold_id and ${holds.status} = 'active' ${abandonedOnly}
      returning ${holds.accountId} as account_id, ${holds.amountCents} as amount, ${holds.apiKeyId} as api_key_id,
        ${holds.endpoint} as endpoint, ${holds.model} as model, ${holds.stream} as stream, ${holds.identity} as identity,
        ${holds.createdAt} as started_at, locked.balance_cents, locked.held_cents
    ),
    charge as (
      select closed.*, greatest(0, least(${costCents}::bigint, closed.balance_cents - (closed.held_cents - closed.amount)))::bigint as charged
      from closed
    ),
    entry as (
      insert into ${ledgerEntries} (id, account_id, kind, amount_cents, balance_after_cents, idempotency_key, request_id, created_at)
      select ${newId.ledgerEntry()}, account_id, 'usage', -charged, balance_cents - charged, ${key}, ${requestId}, ${at}
      from charge where charged > 0
      on conflict (account_id, idempotency_key) do nothing
      returning amount_cents
    ),
    account as (
      update ${accounts} set held_cents = ${accounts.heldCents} - charge.amount,
        balance_cents = ${accounts.balanceCents} + coalesce((select amount_cents from entry), 0), updated_at = ${at}
      from charge where ${accounts.id} = charge.account_id
    ),
    end_user as (
      insert into ${endUsers} as e (id, account_id, external_id, display_name, request_count, input_tokens, output_tokens, cost_cents, first_seen_at, last_seen_at)
      select ${newId.endUser()}, account_id, identity->>'userId', identity->>'userName', 1, ${ending.inputTokens}::bigint,
        ${ending.outputTokens}::bigint, charged, ${at}, ${at}
      from charge where charged > 0 and identity ? 'userId'
      on conflict (account_id, external_id) do update set
        request_count = e.request_count + 1, input_tokens = e.input_tokens + excluded.input_tokens,
        output_tokens = e.output_tokens + excluded.output_tokens, cost_cents = e.cost_cents + excluded.cost_cents,
        last_seen_at = excluded.last_seen_at, display_name = coalesce(excluded.display_name, e.display_name)
      returning e.id
    ),
    conversation as (
      insert into ${conversations} as c (id, account_id, external_id, end_user_id, request_count, input_tokens, output_tokens, cost_cents, first_seen_at, last_seen_at)
      select ${newId.conversation()}, account_id, identity->>'sessionId', (select id from end_user), 1, ${ending.inputTokens}::bigint,
        ${ending.outputTokens}::bigint, charged, ${at}, ${at}
      from charge where charged > 0 and identity ? 'sessionId'
      on conflict (account_id, external_id) do update set
        request_count = c.request_count + 1, input_tokens = c.input_tokens + excluded.input_tokens,
        output_tokens = c.output_tokens + excluded.output_tokens, cost_cents = c.cost_cents + excluded.cost_cents,
        last_seen_at = excluded.last_seen_at, end_user_id = coalesce(excluded.end_user_id, c.end_user_id)
      returning c.id
    ),
    record as (
      insert into ${requests} (id, account_id, api_key_id, endpoint, model, end_user_id, conversation_id, stream, input_tokens, output_tokens,
        cost_cents, status, http_status, error_code, latency_ms, created_at)
      select ${requestId}, account_id, api_key_id, endpoint, model, (select id from end_user), (select id from conversation), stream,
        ${ending.inputTokens}::bigint, ${ending.outputTokens}::bigint, charged, ${ending.status}, ${ending.httpStatus}::int, ${ending.errorCode},
        least(2147483647, greatest(0, round(extract(epoch from (${at} - started_at)) * 1000)))::int, ${at}
      from charge
      on conflict (id) do nothing
    )
    select (select count(*) from locked)::int as found,
      (select charged from charge)::text as charged,
      (select -amount_cents from ${ledgerEntries} where account_id = (select account_id from locked) and idempotency_key = ${key})::text as previous`);
  const [row] = rowsOf<{ found: number; charged: string | null; previous: string | null }>(result);
  if (!row || row.found === 0) return { found: false };
  if (row.charged !== null) return { found: true, closedNow: true, chargedCents: Number(row.charged) };
  return { found: true, closedNow: false, chargedCents: Number(row.previous ?? 0) };
}
