import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
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

/**
 * libpq's URL for a Unix socket, `postgres://user@/db?host=/var/run/postgresql`,
 * as postgres.js takes it: the socket directory as the `host` option. On one
 * machine a socket costs far less per query than loopback TCP.
 */
export function connectionOf(url: string): { url: string; host?: string } {
  const param = /([?&])host=([^&]*)&?/.exec(url);
  const dir = param ? decodeURIComponent(param[2]!) : "";
  if (!dir.startsWith("/")) return { url };
  const rest = url.replace(param![0], param![1]!).replace(/[?&]$/, "");
  return { url: rest.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)(?=\/)/, "$1localhost"), host: dir };
}

async function migrateWithLock(url: string): Promise<void> {
  // One connection, so the session-level lock and the migration share it.
  const { url: target, host } = connectionOf(url);
  const client = postgres(target, { host, max: 1, onnotice: () => {} });
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
  const { url: target, host } = connectionOf(url);
  const client = postgres(target, {
    host,
    max: options.maxConnections ?? 10,
    backoff: reconnectBackoffSeconds,
    onnotice: () => {},
    // Statements stay prepared per connection (see preparedStatement). A custom
    // plan re-plans on every call, and the planner's probes of index ends
    // (get_actual_variable_range) walk every dead entry that settled holds
    // leave in holds' expiry index until vacuum: planning time grew with the
    // table, to a millisecond and more per settle. Generic plans are planned once.
    connection: { plan_cache_mode: "force_generic_plan" },
  });
  const db = drizzlePostgres(client, { schema });
  return { db: db as unknown as Db, driver: "postgres", close: () => client.end({ timeout: 5 }) };
}

// PostgreSQL's defaults size a server that has the machine to itself; the
// embedded database lives inside the API process, whose whole budget is a few
// hundred MB, and its files stay in the OS page cache anyway. 128 MB of
// shared buffers alone would be more than the rest of the process.
const EMBEDDED_SETTINGS = ["shared_buffers=16MB", "wal_buffers=1MB", "temp_buffers=1MB", "work_mem=2MB", "maintenance_work_mem=16MB"];

/**
 * Creates a new data folder in a process of its own. initdb grows PGlite's
 * WASM memory to about 1 GB, and WASM memory never shrinks: done in the
 * server, that would stay its resident size for as long as it runs.
 */
function createPgliteDataDir(dataDir: string): void {
  const pglite = import.meta.resolve("@electric-sql/pglite");
  const script = `const { PGlite } = await import(${JSON.stringify(pglite)}); await (await PGlite.create(${JSON.stringify(dataDir)})).close();`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`could not create the embedded database in ${dataDir}: ${result.stderr || result.error?.message}`);
}

/** The embedded default: PostgreSQL compiled to WASM, persisted in a data folder (or in memory). */
export async function openPglite(dataDir: string | null): Promise<Database> {
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
    if (!existsSync(join(dataDir, "PG_VERSION"))) createPgliteDataDir(dataDir);
  }
  const options = { postgresqlconf: EMBEDDED_SETTINGS };
  const client = dataDir ? new PGlite(dataDir, options) : new PGlite(options);
  const db = drizzlePglite(client, { schema });
  await migratePglite(db, { migrationsFolder });
  return { db: db as unknown as Db, driver: "pglite", close: () => client.close() };
}

export async function pingDatabase(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}

