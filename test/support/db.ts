import postgres from "postgres";
import { randomBase62 } from "../../src/domain/ids.js";
import { type Database, openPglite, openPostgres } from "../../src/infra/db.js";
import { testEnv } from "./env.js";

export interface TestDatabase extends Database {
  url: string;
  /** Closes the connections and drops the database. */
  drop(): Promise<void>;
}

function databaseUrl(name: string): string {
  const url = new URL(testEnv.adminDatabaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(testEnv.adminDatabaseUrl, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** A fresh, migrated PostgreSQL database of its own for one test file. */
export async function createTestDatabase(options: { maxConnections?: number } = {}): Promise<TestDatabase> {
  const name = `sentx_test_${randomBase62(12).toLowerCase()}`;
  await withAdmin((sql) => sql.unsafe(`create database ${name}`));
  const url = databaseUrl(name);
  const database = await openPostgres(url, options);
  return {
    ...database,
    url,
    drop: async () => {
      await database.close();
      await withAdmin((sql) => sql.unsafe(`drop database if exists ${name} with (force)`));
    },
  };
}

/** An in-memory PGlite database: the embedded driver. */
export async function createPgliteDatabase(): Promise<TestDatabase> {
  const database = await openPglite(null);
  return { ...database, url: "pglite://memory", drop: () => database.close() };
}
