import { timingSafeEqual } from "node:crypto";
import type { Accounts } from "../domain/accounts.js";
import type { Db } from "../domain/db.js";
import type { Keys } from "../domain/keys.js";
import type { Ledger } from "../domain/ledger.js";

export interface OpsServices {
  db: Db;
  accounts: Accounts;
  keys: Keys;
  ledger: Ledger;
}

export interface OpsContext {
  services: OpsServices;
  authorized: boolean;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
export function isOpsToken(authorization: string | null, opsToken: string): boolean {
  const presented = Buffer.from(BEARER.exec(authorization ?? "")?.[1] ?? "");
  const expected = Buffer.from(opsToken);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
