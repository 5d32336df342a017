import { and, eq } from "drizzle-orm";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import type { Ledger } from "./ledger.js";
import { type LedgerEntry, type LedgerEntryKind, requests } from "./schema/index.js";
import { inScope, type TxScope } from "./tx-scope.js";

/** Credit moved by hand (SPEC 12), always through the ledger, with a memo and the operator's idempotency key. */
export interface ManualCredit {
  accountId: string;
  /** Signed cents; a grant's is positive. */
  amountCents: number;
  /** Namespaced by kind below, so one key may serve a grant and an adjustment without either swallowing the other. */
  idempotencyKey: string;
  memo?: string | undefined;
}

export interface ManualRefund extends ManualCredit {
  /** The request the refund is for, when it is for one. */
  requestId?: string | undefined;
}

export interface CreditMoved {
  entry: LedgerEntry;
  /** The idempotency key had been used: the first entry, and nothing moved. */
  duplicate: boolean;
}

// Ledger kinds ops may post; top-ups and usage come only from payments and metering.
type ManualKind = Extract<LedgerEntryKind, "grant" | "adjustment" | "refund">;

export function createCredits({ db, ledger }: { db: Db; ledger: Ledger }) {
  /** Like every ledger entry, one that would take the balance below zero is refused (402 insufficient_balance). */
  function post(kind: ManualKind, input: ManualRefund, scope: TxScope | undefined): Promise<CreditMoved> {
    return inScope(db, scope, async ({ tx }) => {
      const { entry, created } = await ledger.post(tx, {
        accountId: input.accountId,
        kind,
        amountCents: input.amountCents,
        idempotencyKey: `${kind}:${input.idempotencyKey}`,
        memo: input.memo ?? null,
        requestId: input.requestId ?? null,
      });
      return { entry, duplicate: !created };
    });
  }

  return {
    grant: (input: ManualCredit, scope?: TxScope) => post("grant", input, scope),

    /** A correction, either way. */
    adjust: (input: ManualCredit, scope?: TxScope) => post("adjustment", input, scope),

    /** Credit given back (positive) or taken back (negative); a request it names must be the account's. */
    refund(input: ManualRefund, scope?: TxScope): Promise<CreditMoved> {
      return inScope(db, scope, async (scope) => {
        if (input.requestId !== undefined) {
          const [request] = await scope.tx
            .select({ id: requests.id })
            .from(requests)
            .where(and(eq(requests.id, input.requestId), eq(requests.accountId, input.accountId)));
          if (!request) throw new DomainError("not_found", `No request ${input.requestId} on account ${input.accountId}.`, "requestId");
        }
        return post("refund", input, scope);
      });
    },
  };
}

export type Credits = ReturnType<typeof createCredits>;
