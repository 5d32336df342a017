import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBase62 } from "../domain/ids.js";

const FILE = "ops-token";

export function readOpsToken(dataDir: string): string | undefined {
  const path = join(dataDir, FILE);
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}

/**
 * With no OPS_TOKEN configured, the server makes one and keeps it in the data
 * folder (owner-only), where the CLI on the same machine finds it.
 */
export function ensureOpsToken(dataDir: string): string {
  const existing = readOpsToken(dataDir);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true });
  const token = `ops_${randomBase62(40)}`;
  writeFileSync(join(dataDir, FILE), `${token}\n`, { mode: 0o600 });
  return token;
}
