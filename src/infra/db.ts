import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "../domain/schema/index.js";
import type { Db } from "../domain/db.js";

export const migrationsFolder = fileURLToPath(new URL("../../drizzle", import.meta.url));

export interface Database {
  db: Db;
  driver: "postgres" | "pglite";
  close(): Promise<void>;
}

// Any number of API instances may start at once against one database: the
// advisory lock makes them apply migrations one after another.
const MIGRATION_LOCK_ID = 7_364_021;

async function migrateWithLock(url: string): Promise<void> {
  // One connection, so the session-level lock and the migration share it.
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await migratePostgres(drizzlePostgres(client), { migrationsFolder });
  } finally {
    await client.end({ timeout: 5 });
  }
}

/**
 * How long a pool connection waits before reconnecting, by failures in a row
 * (shared by the pool). The driver's default grows to 10–20 s after a handful
 * of lost connections (a failover, pg_terminate_backend), and every request
 * queued on those connections waits that long; 50 ms doubling to at most 2 s
 * recovers at once without hammering a database that is really down.
 */
export const reconnectBackoffSeconds = (failures: number): number => Math.min(0.05 * 2 ** failures, 2);

export async function openPostgres(url: string, options: { maxConnections?: number } = {}): Promise<Database> {
  await migrateWithLock(url);
  const client = postgres(url, { max: options.maxConnections ?? 10, backoff: reconnectBackoffSeconds, onnotice: () => {} });
  const db = drizzlePostgres(client, { schema });
  return { db: db as unknown as Db, driver: "postgres", close: () => client.end({ timeout: 5 }) };
}

/** The embedded default: PostgreSQL compiled to WASM, persisted in a data folder (or in memory). */
export async function openPglite(dataDir: string | null): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const client = dataDir ? new PGlite(dataDir) : new PGlite();
  const db = drizzlePglite(client, { schema });
  await migratePglite(db, { migrationsFolder });
  return { db: db as unknown as Db, driver: "pglite", close: () => client.close() };
}

export async function pingDatabase(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}

