import { and, or, sql } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { newId } from "./ids.js";
import { newestFirstPage, type Page, type PageRequest } from "./keyset-page.js";
import { equalsIfGiven, withinIfGiven } from "./list-filters.js";
import { type AuditEntry, auditLog } from "./schema/index.js";
import { redactSecrets } from "./secret-redaction.js";
import { inNewScope, type TxScope } from "./tx-scope.js";

/** An ops mutation as its audit row names it. */
export interface AuditedCall {
  /** The name of the ops token presented. */
  actor: string;
  procedure: string;
  input: unknown;
}

export interface AuditQuery extends PageRequest {
  actor?: string | undefined;
  procedure?: string | undefined;
  /** Rows whose input or result names this account. */
  accountId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

const newestFirst = { table: auditLog, at: auditLog.createdAt, id: auditLog.id };

const namesAccount = (accountId: string) =>
  or(
    sql`${auditLog.input}->>'accountId' = ${accountId}`,
    sql`${auditLog.result}->>'accountId' = ${accountId}`,
    // accounts.create answers with the account itself.
    sql`${auditLog.result}->>'id' = ${accountId}`,
  );

export function createAudit({ db, clock }: { db: Db; clock: Clock }) {
  return {
    /**
     * Runs a mutation and writes its audit row in the same transaction, so the
     * change and its row commit together or not at all.
     *
     * Decision: a mutation that fails writes no row. Its transaction rolls back,
     * so it changed nothing, and the log stays a list of changes made; a row
     * written beside it in a transaction of its own could itself be lost, and
     * would put refusals among changes. Unexpected failures are in the server log.
     */
    async record<T>(call: AuditedCall, mutation: (scope: TxScope) => Promise<T>, resultOf: (value: T) => unknown): Promise<T> {
      return inNewScope(db, async (scope) => {
        const value = await mutation(scope);
        await scope.tx.insert(auditLog).values({
          id: newId.auditEntry(),
          actor: call.actor,
          procedure: call.procedure,
          input: redactSecrets(call.input),
          result: redactSecrets(resultOf(value)),
          createdAt: clock.now(),
        });
        return value;
      });
    },

    list(query: AuditQuery): Promise<Page<AuditEntry>> {
      const filters = and(
        equalsIfGiven(auditLog.actor, query.actor),
        equalsIfGiven(auditLog.procedure, query.procedure),
        query.accountId === undefined ? undefined : namesAccount(query.accountId),
        withinIfGiven(auditLog.createdAt, query),
      );
      return newestFirstPage(db, newestFirst, filters, query);
    },
  };
}

export type Audit = ReturnType<typeof createAudit>;
