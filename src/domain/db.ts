import { type ExtractTablesWithRelations, type Placeholder, type SQL, sql } from "drizzle-orm";
import {
  type PgDatabase,
  PgDialect,
  type PgPreparedQuery,
  type PgQueryResultHKT,
  type PgTransaction,
  type PreparedQueryConfig,
} from "drizzle-orm/pg-core";
import type * as schema from "./schema/index.js";

type Schema = typeof schema;

/** The database as the domain sees it: the same for postgres.js and PGlite. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Either a database or an open transaction: domain functions accept both. */
export type DbOrTx = Db | Tx;

/** The rows of a raw `execute`: postgres.js returns them as an array, PGlite as `{ rows }`. Numbers of bigint columns come as text. */
export const rowsOf = <Row>(result: unknown): Row[] => (Array.isArray(result) ? result : (result as { rows: Row[] }).rows);

// A lost or refused connection, seen through drizzle's query wrapper (the
// driver's error is its `cause`): postgres.js's CONNECTION_* codes and socket
// errors, and PostgreSQL's own "connection exception" (class 08) and
// "operator intervention" codes (57P01 admin shutdown, as pg_terminate_backend
// sends; 57P02 crash shutdown; 57P03 cannot connect now).
const CONNECTION_LOSS = /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|08...|57P0[123])$/;

/** True for a database failure that says nothing about the query: another connection may well succeed. */
export function isConnectionLoss(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_LOSS.test(code)) return true;
  }
  return false;
}

/**
 * Runs an idempotent database step, and once more (on a new connection: the
 * pool replaces a lost one) if its connection was lost. A second loss is
 * left to the caller, who answers 503.
 */
export async function retryOnConnectionLoss<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!isConnectionLoss(error)) throw error;
    return step();
  }
}

/** A statement's named values: `p.cost` stands for the value the caller passes as `cost`. */
type Placeholders<V> = { readonly [K in keyof V & string]: Placeholder<K> };

/**
 * A raw SQL statement that is rendered once, not per call. `build` gets a
 * placeholder for each value; each call only binds values to them, and the
 * driver keeps the statement prepared on each connection. On the hot path the
 * rendering (drizzle walking the template) cost as much as the driver.
 */
export function preparedStatement<V extends Record<string, unknown>>(name: string, build: (p: Placeholders<V>) => SQL) {
  const placeholders = new Proxy({}, { get: (_, key) => sql.placeholder(String(key)) }) as Placeholders<V>;
  const query = new PgDialect().sqlToQuery(build(placeholders));
  const prepared = new WeakMap<Db, PgPreparedQuery<PreparedQueryConfig>>();
  return async <Row>(db: Db, values: V): Promise<Row[]> => {
    let statement = prepared.get(db);
    if (!statement) {
      statement = db._.session.prepareQuery(query, undefined, name, false);
      prepared.set(db, statement);
    }
    return rowsOf<Row>(await statement.execute(values));
  };
}
