import type postgres from "postgres";

// One account's money and request trail, read straight from the tables in one
// snapshot: what a fault test checks for the requests it just made (each test
// case uses an account of its own, so "this account's requests" are exactly
// the requests of the case, found even when the client never saw their ids).

export interface RequestTrail {
  requestId: string;
  /** The request record; undefined when none was written. */
  record?: {
    status: string;
    httpStatus: number;
    errorCode: string | null;
    /** Read as numbers; an absurd stored count still shows as absurd. */
    inputTokens: number;
    outputTokens: number;
    costCents: number;
  };
  hold?: { status: string; amountCents: number };
  /** What the ledger's usage entries took from this account for it (0 when nothing). */
  chargedCents: number;
  /**
   * The idempotency key of every usage entry that names the request, on any
   * account: one per charge, so a request charged twice, or charged to
   * another account as well, shows here.
   */
  chargeKeys: string[];
}

export interface AccountBooks {
  balanceCents: number;
  heldCents: number;
  /** Every request that has a hold or a record, oldest first. */
  requests: RequestTrail[];
}

export async function accountBooks(sql: postgres.Sql, accountId: string): Promise<AccountBooks> {
  return sql.begin("isolation level repeatable read", async (tx) => {
    const [account] = await tx<{ balance: string; held: string }[]>`
      select balance_cents::text as balance, held_cents::text as held from accounts where id = ${accountId}`;
    if (!account) throw new Error(`no account ${accountId}`);
    const rows = await tx<
      {
        id: string;
        status: string | null;
        http_status: number | null;
        error_code: string | null;
        input_tokens: string | null;
        output_tokens: string | null;
        cost_cents: string | null;
        hold_status: string | null;
        hold_cents: string | null;
        charged: string;
        charge_keys: string[];
      }[]
    >`
      with ids as (
        select request_id as id from holds where account_id = ${accountId}
        union select id from requests where account_id = ${accountId}
      )
      select ids.id, r.status, r.http_status, r.error_code,
        r.input_tokens::text, r.output_tokens::text, r.cost_cents::text,
        h.status as hold_status, h.amount_cents::text as hold_cents,
        coalesce((select -sum(e.amount_cents) from ledger_entries e
          where e.account_id = ${accountId} and e.kind = 'usage' and e.request_id = ids.id), 0)::text as charged,
        array(select e.idempotency_key from ledger_entries e
          where e.kind = 'usage' and e.request_id = ids.id order by e.idempotency_key) as charge_keys
      from ids
      left join requests r on r.id = ids.id
      left join holds h on h.request_id = ids.id
      order by least(r.created_at, h.created_at), ids.id`;
    return {
      balanceCents: Number(account.balance),
      heldCents: Number(account.held),
      requests: rows.map((row) => ({
        requestId: row.id,
        ...(row.status !== null && {
          record: {
            status: row.status,
            httpStatus: row.http_status!,
            errorCode: row.error_code,
            inputTokens: Number(row.input_tokens),
            outputTokens: Number(row.output_tokens),
            costCents: Number(row.cost_cents),
          },
        }),
        ...(row.hold_status !== null && { hold: { status: row.hold_status, amountCents: Number(row.hold_cents) } }),
        chargedCents: Number(row.charged),
        chargeKeys: row.charge_keys,
      })),
    };
  });
}

/** The trail of the account's only request; fails when it has none or several. */
export async function onlyRequest(sql: postgres.Sql, accountId: string): Promise<RequestTrail> {
  const { requests } = await accountBooks(sql, accountId);
  if (requests.length !== 1) throw new Error(`account ${accountId} has ${requests.length} requests, expected exactly one`);
  return requests[0]!;
}
