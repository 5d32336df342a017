import type { Db, Tx } from "./db.js";

/**
 * Where a domain change runs: an open transaction, and what must wait for its
 * commit. A caller that owns the transaction (the audited ops mutations) passes
 * its scope down, so the change and whatever it writes beside it commit together.
 */
export interface TxScope {
  readonly tx: Tx;
  /**
   * Runs `effect` once the transaction has committed, never if it rolls back:
   * other instances must not drop their caches for a change that may yet be
   * undone (or refill them with the row before it commits).
   */
  afterCommit(effect: () => Promise<void>): void;
}

/** Runs `work` in a new transaction, then, once it committed, its after-commit effects in order. */
export async function inNewScope<T>(db: Db, work: (scope: TxScope) => Promise<T>): Promise<T> {
  const effects: Array<() => Promise<void>> = [];
  const result = await db.transaction((tx) => work({ tx, afterCommit: (effect) => void effects.push(effect) }));
  for (const effect of effects) await effect();
  return result;
}

/** Runs `work` in the caller's scope when there is one (the caller commits), else in a new one. */
export const inScope = <T>(db: Db, scope: TxScope | undefined, work: (scope: TxScope) => Promise<T>): Promise<T> =>
  scope ? work(scope) : inNewScope(db, work);
