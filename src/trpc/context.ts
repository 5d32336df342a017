import { createHash, timingSafeEqual } from "node:crypto";
import type { AccountClaims } from "../domain/account-claims.js";
import type { Accounts } from "../domain/accounts.js";
import type { Audit } from "../domain/audit.js";
import type { Credits } from "../domain/credits.js";
import type { Db } from "../domain/db.js";
import type { Files } from "../domain/files/files.js";
import type { IdentityDirectory } from "../domain/identity-directory.js";
import type { JobOperations } from "../domain/jobs/job-monitor.js";
import type { Keys } from "../domain/keys.js";
import type { Ledger } from "../domain/ledger.js";
import type { RequestHistory } from "../domain/request-history.js";
import type { WeeklyQuotaService } from "../domain/weekly-quota.js";
import type { NamedOpsToken } from "../infra/ops-token.js";

export interface OpsServices {
  db: Db;
  accounts: Accounts;
  claims: AccountClaims;
  keys: Keys;
  ledger: Ledger;
  credits: Credits;
  files: Files;
  requests: RequestHistory;
  identities: IdentityDirectory;
  jobs: JobOperations;
  audit: Audit;
  weeklyQuota: WeeklyQuotaService;
}

export interface OpsContext {
  services: OpsServices;
  /** The name of the ops token presented; null when none matched. */
  actor: string | null;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * The name of the ops token presented, or null. Every token is compared, in
 * constant time and as digests, so neither timings nor lengths tell an attacker
 * how close a guess came or which token it neared.
 */
export function opsTokenHolder(authorization: string | null, tokens: NamedOpsToken[]): string | null {
  const presented = digest(BEARER.exec(authorization ?? "")?.[1] ?? "");
  let holder: string | null = null;
  for (const { name, token } of tokens) if (timingSafeEqual(presented, digest(token))) holder = name;
  return holder;
}

/** For what any ops token opens (/metrics), whoever holds it. */
export const isOpsToken = (authorization: string | null, tokens: NamedOpsToken[]): boolean => opsTokenHolder(authorization, tokens) !== null;
