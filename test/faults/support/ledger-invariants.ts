import type postgres from "postgres";

// The money invariants every fault test ends with, read straight from the
// tables in one snapshot, independent of the code under test.

export interface LedgerReport {
  accounts: number;
  /** Requests with a usage charge in the ledger. */
  chargedRequests: number;
  /** Rows in the request log. */
  requestRecords: number;
  /** Holds still active (money still reserved). */
  activeHolds: number;
  /** Every broken invariant, one line each; empty when the books are exact. */
  discrepancies: string[];
}

/**
 * For every account: the balance equals the sum of its ledger entries, and the
 * held amount equals the sum of its active holds. For every charged request:
 * exactly one usage entry and exactly one request record, whose cost is what
 * the ledger charged. No request record claims a cost the ledger does not have.
 */
export async function ledgerReport(sql: postgres.Sql): Promise<LedgerReport> {
  return sql.begin("isolation level repeatable read", async (tx) => {
    const discrepancies: string[] = [];
    const balances = await tx<{ id: string; balance: string; ledger: string; held: string; active: string }[]>`
      select a.id, a.balance_cents::text as balance, a.held_cents::text as held,
        coalesce((select sum(amount_cents) from ledger_entries e where e.account_id = a.id), 0)::text as ledger,
        coalesce((select sum(amount_cents) from holds h where h.account_id = a.id and h.status = 'active'), 0)::text as active
      from accounts a`;
    for (const a of balances) {
      if (a.balance !== a.ledger) discrepancies.push(`account ${a.id}: balance ${a.balance} ≠ ledger sum ${a.ledger}`);
      if (a.held !== a.active) discrepancies.push(`account ${a.id}: held ${a.held} ≠ active holds ${a.active}`);
      if (Number(a.balance) < 0) discrepancies.push(`account ${a.id}: negative balance ${a.balance}`);
    }
    const charges = await tx<{ request_id: string | null; entries: number; charged: string }[]>`
      select request_id, count(*)::int as entries, (-sum(amount_cents))::text as charged
      from ledger_entries where kind = 'usage' group by request_id`;
    const records = await tx<{ id: string; cost_cents: string }[]>`select id, cost_cents::text from requests`;
    const recordById = new Map(records.map((r) => [r.id, r]));
    for (const c of charges) {
      if (c.request_id === null) {
        discrepancies.push(`${c.entries} usage entries name no request`);
        continue;
      }
      if (c.entries !== 1) discrepancies.push(`request ${c.request_id}: ${c.entries} usage charges`);
      const record = recordById.get(c.request_id);
      if (!record) discrepancies.push(`request ${c.request_id}: charged ${c.charged} ¢ but has no request record`);
      else if (record.cost_cents !== c.charged) {
        discrepancies.push(`request ${c.request_id}: record says ${record.cost_cents} ¢, ledger charged ${c.charged} ¢`);
      }
    }
    const charged = new Set(charges.map((c) => c.request_id));
    for (const r of records) {
      if (r.cost_cents !== "0" && !charged.has(r.id)) discrepancies.push(`request ${r.id}: record says ${r.cost_cents} ¢ but nothing was charged`);
    }
    const [holds] = await tx<{ active: number }[]>`select count(*)::int as active from holds where status = 'active'`;
    return {
      accounts: balances.length,
      chargedRequests: charges.length,
      requestRecords: records.length,
      activeHolds: holds!.active,
      discrepancies,
    };
  });
}
