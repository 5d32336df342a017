import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { randomBase62 } from "../domain/ids.js";

const FILE = "ops-token";

/** An ops token and the name its holder acts under: the audit log's actor (SPEC 12). */
export interface NamedOpsToken {
  name: string;
  token: string;
}

/** What OPS_TOKEN alone is called. */
export const DEFAULT_OPS_TOKEN_NAME = "ops";

const namedToken = z
  .string()
  .transform((entry, ctx) => {
    const colon = entry.indexOf(":");
    if (colon < 0) {
      ctx.addIssue({ code: "custom", message: "each entry is name:token" });
      return z.NEVER;
    }
    return { name: entry.slice(0, colon).trim(), token: entry.slice(colon + 1).trim() };
  })
  .pipe(
    z.object({
      name: z.string().regex(/^[\w.@-]{1,64}$/, "a token's name is 1 to 64 letters, digits and _ . @ -"),
      token: z.string().min(24, "each token must be at least 24 characters"),
    }),
  );

/** OPS_TOKENS: `name:token,name:token`, each name and each token once. */
export const opsTokenList = z
  .string()
  .transform((list) => list.split(",").map((entry) => entry.trim()).filter(Boolean))
  .pipe(z.array(namedToken).min(1))
  .refine((tokens) => new Set(tokens.map((t) => t.name)).size === tokens.length, "each name may appear once")
  .refine((tokens) => new Set(tokens.map((t) => t.token)).size === tokens.length, "each token may appear once");

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

/**
 * The tokens the ops API accepts: OPS_TOKEN (named "ops") and OPS_TOKENS; with
 * neither, the one kept in the data folder, named "ops".
 */
export function resolveOpsTokens(config: { opsToken: string | undefined; opsTokens: NamedOpsToken[]; dataDir: string }): NamedOpsToken[] {
  const configured = [...(config.opsToken ? [{ name: DEFAULT_OPS_TOKEN_NAME, token: config.opsToken }] : []), ...config.opsTokens];
  return configured.length > 0 ? configured : [{ name: DEFAULT_OPS_TOKEN_NAME, token: ensureOpsToken(config.dataDir) }];
}
