import { sql } from "drizzle-orm";
import { type Db, preparedStatement } from "./db.js";
import { newId } from "./ids.js";
import type { HoldStatus, RequestStatus } from "./schema/index.js";
import { accounts, conversations, endUsers, holds, ledgerEntries, requests, weeklyChatUsage } from "./schema/index.js";

// Ending holds is one SQL statement (writable CTEs) for any number of them, so
// an account row is locked for one round trip per batch instead of a
// transaction's worth per request: on a busy account every request waits for
// that lock (ARCHITECTURE: the hot path is lean). The statement does what
// billing.ts's invariants ask, atomically:
//
//   locked   locks the accounts that own the holds, in id order (so batches
//            never deadlock each other), before any hold row, the order every
//            path takes; and reads their balances and holds;
//   closed   closes each hold only if it is still active, so whoever closes it
//            first (the request, a retry, or the sweeper) is the only one
//            that charges and records it;
//   charge   never more than the balance no other hold has reserved: for the
//            holds of one account in one batch, in their order, each may take
//            what the balance less the account's other holds and the costs
//            before it leaves, so together they never overdraw it;
//   entry    the usage entries, under their idempotency keys;
//   account  gives the holds back and moves each balance by exactly the
//            entries inserted, so a balance stays the sum of its entries;
//   quota    a plan-covered hold (SPEC 10) charges nothing: it gives its
//            chat back to its week when it ended before any output (cost 0,
//            not billable), or counts it as used, once, as the hold closes;
//   end_user, conversation, record: the request records and their end users'
//            and conversations' running totals (SPEC 3), with the charges.
//
// Every step reads only from the steps before it, which fixes their order;
// PostgreSQL runs every data-modifying step, read or not, exactly once. Values
// come as arrays, one element per hold, so the statement's text is the same
// for any batch and stays prepared.

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
  /**
   * Not closed by this call: `status` is how it was closed before (or still
   * active, where the sweeper's guard left it open); chargedCents is what its
   * usage entry charged then.
   */
  | { found: true; closedNow: false; status: HoldStatus; chargedCents: number };

interface CloseHoldsValues extends Record<string, unknown> {
  requestIds: string[];
  costs: number[];
  closeAs: string[];
  statuses: string[];
  httpStatuses: number[];
  errorCodes: Array<string | null>;
  inputTokens: number[];
  outputTokens: number[];
  entryIds: string[];
  endUserIds: string[];
  conversationIds: string[];
  /** Only the sweeper's: the checkpoint it read, which the hold must still be at. */
  abandonedCosts: Array<number | null>;
  at: string;
}

const closeHoldsStatement = preparedStatement<CloseHoldsValues>("close_holds", (p) => {
  const at = sql`${p.at}::timestamptz`;
  const totals = (table: string) => sql.raw(`request_count = ${table}.request_count + excluded.request_count,
        input_tokens = ${table}.input_tokens + excluded.input_tokens, output_tokens = ${table}.output_tokens + excluded.output_tokens,
        cost_cents = ${table}.cost_cents + excluded.cost_cents, last_seen_at = excluded.last_seen_at`);
  // What an end user's or a conversation's charged requests in this batch add to its totals.
  const usageSums = sql.raw("count(*) as requests, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens, sum(charged) as cost");
  return sql`
    with recursive input as (
      select * from unnest(${p.requestIds}::text[], ${p.costs}::bigint[], ${p.closeAs}::text[], ${p.statuses}::text[],
        ${p.httpStatuses}::int[], ${p.errorCodes}::text[], ${p.inputTokens}::bigint[], ${p.outputTokens}::bigint[], ${p.entryIds}::text[],
        ${p.endUserIds}::text[], ${p.conversationIds}::text[], ${p.abandonedCosts}::bigint[])
        with ordinality as i(request_id, cost, close_as, status, http_status, error_code, input_tokens, output_tokens, entry_id,
          end_user_id, conversation_id, abandoned_cost, ord)
    ),
    locked as (
      select a.id as account_id, a.balance_cents, a.held_cents from ${accounts} a
      where a.id in (select h.account_id from ${holds} h join input on input.request_id = h.request_id)
      order by a.id for update
    ),
    closed as (
      update ${holds} set status = i.close_as, closed_at = ${at}
      from input i, locked l
      where ${holds.requestId} = i.request_id and l.account_id = ${holds.accountId} and ${holds.status} = 'active'
        and (i.abandoned_cost is null or (${holds.expiresAt} < ${at} and ${holds.deliveredCostCents} = i.abandoned_cost))
      returning ${holds.accountId} as account_id, ${holds.requestId} as request_id, ${holds.amountCents} as amount,
        ${holds.apiKeyId} as api_key_id, ${holds.endpoint} as endpoint, ${holds.model} as model, ${holds.stream} as stream,
        ${holds.identity} as identity, ${holds.createdAt} as started_at, ${holds.quotaWeek} as quota_week, i.ord, i.cost, i.status, i.http_status, i.error_code,
        i.input_tokens, i.output_tokens, i.entry_id, i.end_user_id, i.conversation_id, l.balance_cents, l.held_cents
    ),
    numbered as (
      select c.*, row_number() over (partition by c.account_id order by c.ord)::bigint as step,
        sum(c.amount) over (partition by c.account_id order by c.ord) as released_so_far
      from closed c
    ),
    -- One account's holds in batch order, as if settled one after another:
    -- each takes at most what the balance less the account's other holds
    -- leaves, after the charges before it.
    steps as (
      select distinct account_id, 0::bigint as step, null::text as request_id, 0::bigint as charged, 0::bigint as charged_so_far from numbered
      union all
      select n.account_id, n.step, n.request_id, x.charged, s.charged_so_far + x.charged
      from steps s
      join numbered n on n.account_id = s.account_id and n.step = s.step + 1
      cross join lateral (
        select case when n.quota_week is not null then 0
          else greatest(0, least(n.cost, n.balance_cents - n.held_cents + n.released_so_far - s.charged_so_far)) end::bigint as charged
      ) x
    ),
    charge as (
      -- billable: what the end user's and conversation's totals count; a covered chat is, though it charged nothing.
      select n.*, s.charged, s.charged_so_far, (s.charged > 0 or (n.quota_week is not null and n.cost > 0)) as billable
      from numbered n join steps s on s.request_id = n.request_id
    ),
    entry as (
      insert into ${ledgerEntries} (id, account_id, kind, amount_cents, balance_after_cents, idempotency_key, request_id, created_at)
      select entry_id, account_id, 'usage', -charged, balance_cents - charged_so_far,
        'usage:' || request_id, request_id, ${at}
      from charge where charged > 0
      on conflict (account_id, idempotency_key) do nothing
      returning account_id, amount_cents
    ),
    account as (
      update ${accounts} set held_cents = ${accounts.heldCents} - t.released,
        balance_cents = ${accounts.balanceCents} + coalesce((select sum(e.amount_cents) from entry e where e.account_id = t.account_id), 0),
        updated_at = ${at}
      from (select account_id, sum(amount) as released from charge group by account_id) t
      where ${accounts.id} = t.account_id
    ),
    quota as (
      update ${weeklyChatUsage} w set reserved = w.reserved - q.closed, used = w.used + q.billable
      from (select account_id, quota_week, count(*) as closed, count(*) filter (where cost > 0) as billable
        from charge where quota_week is not null group by 1, 2) q
      where w.account_id = q.account_id and w.week_start = q.quota_week
    ),
    user_usage as (
      select account_id, identity->>'userId' as external_id, min(end_user_id) as new_id,
        (array_agg(identity->>'userName' order by ord desc) filter (where identity ? 'userName'))[1] as display_name,
        ${usageSums}
      from charge where billable and identity ? 'userId' group by 1, 2
    ),
    end_user as (
      insert into ${endUsers} as e (id, account_id, external_id, display_name, request_count, input_tokens, output_tokens, cost_cents, first_seen_at, last_seen_at)
      select new_id, account_id, external_id, display_name, requests, input_tokens, output_tokens, cost, ${at}, ${at} from user_usage
      on conflict (account_id, external_id) do update set ${totals("e")}, display_name = coalesce(excluded.display_name, e.display_name)
      returning e.id, e.account_id, e.external_id
    ),
    conversation_usage as (
      select account_id, identity->>'sessionId' as external_id, min(conversation_id) as new_id,
        (array_agg(identity->>'userId' order by ord desc) filter (where identity ? 'userId'))[1] as user_external_id,
        ${usageSums}
      from charge where billable and identity ? 'sessionId' group by 1, 2
    ),
    conversation as (
      insert into ${conversations} as c (id, account_id, external_id, end_user_id, request_count, input_tokens, output_tokens, cost_cents, first_seen_at, last_seen_at)
      select u.new_id, u.account_id, u.external_id, eu.id, u.requests, u.input_tokens, u.output_tokens, u.cost, ${at}, ${at}
      from conversation_usage u left join end_user eu on eu.account_id = u.account_id and eu.external_id = u.user_external_id
      on conflict (account_id, external_id) do update set ${totals("c")}, end_user_id = coalesce(excluded.end_user_id, c.end_user_id)
      returning c.id, c.account_id, c.external_id
    ),
    record as (
      insert into ${requests} (id, account_id, api_key_id, endpoint, model, end_user_id, conversation_id, stream, input_tokens, output_tokens,
        cost_cents, status, http_status, error_code, latency_ms, created_at)
      select ch.request_id, ch.account_id, ch.api_key_id, ch.endpoint, ch.model, eu.id, cv.id, ch.stream, ch.input_tokens, ch.output_tokens,
        ch.charged, ch.status, ch.http_status, ch.error_code,
        least(2147483647, greatest(0, round(extract(epoch from (${at} - ch.started_at)) * 1000)))::int, ${at}
      from charge ch
      left join end_user eu on ch.billable and eu.account_id = ch.account_id and eu.external_id = ch.identity->>'userId'
      left join conversation cv on ch.billable and cv.account_id = ch.account_id and cv.external_id = ch.identity->>'sessionId'
      on conflict (id) do nothing
    )
    select i.ord::int as ord, h.account_id, ch.charged::text as charged
    from input i
    left join ${holds} h on h.request_id = i.request_id
    left join charge ch on ch.request_id = i.request_id
    order by i.ord`;
});

/**
 * How closed holds were closed and what they charged then: read by a
 * statement of its own, because closeHolds' snapshot predates its wait for
 * the account lock, during which another closer may have committed.
 */
const earlierClosesStatement = preparedStatement<{ accountIds: string[]; requestIds: string[] }>("earlier_closes", (p) => sql`
  select k.request_id, h.status, (-le.amount_cents)::text as charged
  from unnest(${p.accountIds}::text[], ${p.requestIds}::text[]) as k(account_id, request_id)
  join ${holds} h on h.request_id = k.request_id
  left join ${ledgerEntries} le on le.account_id = k.account_id and le.idempotency_key = 'usage:' || k.request_id`);

/** Ends holds in one statement; the answers come in the order of `inputs`. */
export async function closeHolds(db: Db, inputs: readonly CloseHold[]): Promise<ClosedHold[]> {
  if (inputs.length === 0) return [];
  const column = <T>(pick: (input: CloseHold) => T) => inputs.map(pick);
  const rows = await closeHoldsStatement<{ ord: number; account_id: string | null; charged: string | null }>(db, {
    requestIds: column((c) => c.requestId),
    costs: column((c) => c.costCents),
    closeAs: column((c) => c.closeAs),
    statuses: column((c) => c.ending.status),
    httpStatuses: column((c) => c.ending.httpStatus),
    errorCodes: column((c) => c.ending.errorCode),
    inputTokens: column((c) => c.ending.inputTokens),
    outputTokens: column((c) => c.ending.outputTokens),
    entryIds: column(() => newId.ledgerEntry()),
    endUserIds: column(() => newId.endUser()),
    conversationIds: column(() => newId.conversation()),
    abandonedCosts: column((c) => c.abandoned?.deliveredCostCents ?? null),
    // One instant for the batch: the latest of its calls'.
    at: new Date(Math.max(...inputs.map((c) => c.now.getTime()))).toISOString(),
  });
  const closedBefore = rows.filter((row) => row.account_id !== null && row.charged === null);
  const earlier = new Map<string, { status: HoldStatus; chargedCents: number }>();
  if (closedBefore.length > 0) {
    const closes = await earlierClosesStatement<{ request_id: string; status: HoldStatus; charged: string | null }>(db, {
      accountIds: closedBefore.map((row) => row.account_id!),
      requestIds: closedBefore.map((row) => inputs[row.ord - 1]!.requestId),
    });
    for (const { request_id, status, charged } of closes) earlier.set(request_id, { status, chargedCents: Number(charged ?? 0) });
  }
  // A request named twice in one batch was closed once, as its first naming asked.
  const closedHere = new Map<string, HoldStatus>();
  return rows.map((row): ClosedHold => {
    const { requestId, closeAs } = inputs[row.ord - 1]!;
    if (row.account_id === null) return { found: false };
    if (row.charged === null) return { found: true, closedNow: false, ...earlier.get(requestId)! };
    const chargedCents = Number(row.charged);
    const firstClose = closedHere.get(requestId);
    if (firstClose) return { found: true, closedNow: false, status: firstClose, chargedCents };
    closedHere.set(requestId, closeAs);
    return { found: true, closedNow: true, chargedCents };
  });
}
