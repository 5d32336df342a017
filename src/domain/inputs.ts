import { z } from "zod";

// Input schemas of the domain's verbs, parsed once at whichever surface calls them.

const accountId = z.string().regex(/^acct_[0-9A-Za-z]+$/, { error: "accountId must look like acct_…" });

export const accountLimitsInput = z
  .object({
    requestsPerMinute: z.number().int().positive(),
    concurrentStreams: z.number().int().positive(),
    keyCreationsPerHour: z.number().int().positive(),
    maxActiveKeys: z.number().int().positive(),
  })
  .partial();

/** null puts a limit back to the platform default. */
export const setAccountLimitsInput = z.object({
  accountId,
  limits: z
    .object({
      requestsPerMinute: z.number().int().positive().nullable(),
      concurrentStreams: z.number().int().positive().nullable(),
      keyCreationsPerHour: z.number().int().positive().nullable(),
      maxActiveKeys: z.number().int().positive().nullable(),
    })
    .partial()
    .strict(),
});

export const createAccountInput = z.object({
  email: z.email().max(254),
  displayName: z.string().trim().min(1).max(128).optional(),
  plan: z.string().min(1).max(32).optional(),
  initialCreditsCents: z.number().int().nonnegative().max(100_000_000).optional(),
  limits: accountLimitsInput.optional(),
});

export const accountRefInput = z.object({ accountId });

export const grantCreditsInput = z.object({
  accountId,
  amountCents: z.number().int().positive().max(100_000_000),
  // Required so a retried call never grants twice.
  idempotencyKey: z.string().min(1).max(200),
  memo: z.string().max(500).optional(),
});

export const createKeyInput = z.object({
  accountId,
  // SPEC 4: a name is required, at most 64 characters.
  name: z.string().trim().min(1, { error: "name is required." }).max(64, { error: "name may be at most 64 characters." }),
  allowedModels: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
  // Within PostgreSQL's timestamp range and ahead of now: a key born expired is a mistake.
  expiresAt: z.coerce
    .date()
    .refine((date) => date.getTime() > Date.now(), { error: "expiresAt must be in the future." })
    .refine((date) => date.getUTCFullYear() <= 9999, { error: "expiresAt must be before the year 10000." })
    .optional(),
});

export const revokeKeyInput = z.object({
  keyId: z.string().regex(/^key_[0-9A-Za-z]+$/, { error: "keyId must look like key_…" }),
  accountId: accountId.optional(),
});

export const listLedgerInput = z.object({
  accountId,
  limit: z.number().int().min(1).max(500).default(50),
  before: z.string().max(64).optional(),
});
