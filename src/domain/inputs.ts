import { z } from "zod";
import { CLAIM_TOKEN_HOURS } from "./account-claims.js";
import { PLAN_NAMES } from "./plans.js";

// Input schemas of the domain's verbs, parsed once at whichever surface calls them.

const accountId = z.string().regex(/^acct_[0-9A-Za-z]+$/, { error: "accountId must look like acct_…" });
const keyId = z.string().regex(/^key_[0-9A-Za-z]+$/, { error: "keyId must look like key_…" });
const requestId = z.string().regex(/^req_[0-9A-Za-z]+$/, { error: "requestId must look like req_…" }).max(64);
const email = z.email().max(254);
const modelName = z.string().min(1).max(256);
// SPEC 10: the plans there are; a name outside them would leave an account with no quota rules.
const plan = z.enum(PLAN_NAMES, { error: `plan must be one of ${PLAN_NAMES.join(", ")}.` });
const idempotencyKey = z.string().min(1).max(200);
// SPEC 4: keys are shown as `sk-` and 4 characters (and the last 4).
const displayPrefix = z.string().regex(/^sk-[0-9A-Za-z]{4}$/, { error: "displayPrefix must look like sk-AbC1: sk- and 4 characters." });
// Within PostgreSQL's range and the ISO form it parses.
const instant = z.coerce.date().refine((date) => date.getUTCFullYear() >= 1 && date.getUTCFullYear() <= 9999, {
  error: "must be between the years 1 and 9999.",
});
const timeRange = { since: instant.optional(), until: instant.optional() };

/** Ops lists: newest first, `cursor` being the previous page's nextCursor. */
const page = {
  limit: z.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(64).optional(),
};

const exactlyOne = <K extends string>(a: K, b: K) => ({
  check: (input: Partial<Record<K, unknown>>) => (input[a] === undefined) !== (input[b] === undefined),
  error: `Give exactly one of ${a} and ${b}.`,
});

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
  email,
  displayName: z.string().trim().min(1).max(128).optional(),
  plan: plan.optional(),
  initialCreditsCents: z.number().int().nonnegative().max(100_000_000).optional(),
  limits: accountLimitsInput.optional(),
});

export const accountRefInput = z.object({ accountId });

export const issueClaimTokenInput = z.object({
  accountId,
  validForHours: z.number().int().min(1).max(CLAIM_TOKEN_HOURS.max).default(CLAIM_TOKEN_HOURS.default),
});

export const listAccountsInput = z
  .object({ ...page, status: z.enum(["active", "suspended"]).optional(), plan: plan.optional() })
  .prefault({});

const oneOfIdOrEmail = exactlyOne("accountId", "email");
export const findAccountInput = z
  .object({ accountId: accountId.optional(), email: email.optional() })
  .refine(oneOfIdOrEmail.check, { error: oneOfIdOrEmail.error });

export const setAccountPlanInput = z.object({ accountId, plan });

export const grantCreditsInput = z.object({
  accountId,
  amountCents: z.number().int().positive().max(100_000_000),
  // Required so a retried call never grants twice.
  idempotencyKey,
  memo: z.string().max(500).optional(),
});

/** Signed: a correction either way. A debit past the balance is refused (402), never taken below zero. */
export const adjustCreditsInput = z.object({
  accountId,
  amountCents: z
    .number()
    .int()
    .min(-100_000_000)
    .max(100_000_000)
    .refine((cents) => cents !== 0, { error: "amountCents must not be 0." }),
  idempotencyKey,
  // Required: a hand-made change to someone's money says why.
  memo: z.string().trim().min(1, { error: "memo is required." }).max(500),
});

export const refundCreditsInput = adjustCreditsInput.extend({ requestId: requestId.optional() });

export const verifyLedgerInput = z.object({ accountId: accountId.optional() }).optional();

export const createKeyInput = z.object({
  accountId,
  // SPEC 4: a name is required, at most 64 characters.
  name: z.string().trim().min(1, { error: "name is required." }).max(64, { error: "name may be at most 64 characters." }),
  allowedModels: z.array(modelName).min(1).max(100).optional(),
  // Within PostgreSQL's timestamp range and ahead of now: a key born expired is a mistake.
  expiresAt: z.coerce
    .date()
    .refine((date) => date.getTime() > Date.now(), { error: "expiresAt must be in the future." })
    .refine((date) => date.getUTCFullYear() <= 9999, { error: "expiresAt must be before the year 10000." })
    .optional(),
});

export const listKeysInput = z
  .object({ accountId: accountId.optional(), displayPrefix: displayPrefix.optional() })
  .refine((input) => input.accountId !== undefined || input.displayPrefix !== undefined, {
    error: "Give accountId, displayPrefix, or both.",
  });

const oneOfIdOrPrefix = exactlyOne("keyId", "displayPrefix");
/** With accountId, only a key of that account is revoked. */
export const revokeKeyInput = z
  .object({ keyId: keyId.optional(), displayPrefix: displayPrefix.optional(), accountId: accountId.optional() })
  .refine(oneOfIdOrPrefix.check, { error: oneOfIdOrPrefix.error });

/** SPEC 10 key scopes: null or [] lets the key use any model again. With accountId, only a key of that account. */
export const setKeyAllowedModelsInput = z.object({
  keyId,
  accountId: accountId.optional(),
  allowedModels: z
    .array(modelName)
    .max(100)
    .nullable()
    .transform((models) => (models?.length ? models : null)),
});

export const listFilesInput = z.object({
  accountId,
  ...page,
  purpose: z.string().min(1).max(64).optional(),
  // Deleted and expired files keep their rows (without their bytes): ops may see them.
  includeDeleted: z.boolean().default(false),
});

export const purgeFileInput = z.object({ fileId: z.string().regex(/^file-[0-9A-Za-z]{24}$/, { error: "fileId must look like file-…" }) });

export const getRequestInput = z.object({ requestId });

export const listRequestsInput = z
  .object({
    ...page,
    accountId: accountId.optional(),
    keyId: keyId.optional(),
    model: z.string().min(1).max(256).optional(),
    status: z.enum(["succeeded", "cancelled", "failed", "interrupted"]).optional(),
    ...timeRange,
  })
  .prefault({});

/** End users and conversations of one account. */
export const listAccountIdentitiesInput = z.object({ accountId, ...page });

/** One end user or conversation, by the id the integrator sent (SPEC 3). */
export const identityRefInput = z.object({ accountId, externalId: z.string().min(1).max(256) });

const queue = z.string().min(1).max(64);

export const failedJobsInput = z.object({ queue: queue.optional(), limit: z.number().int().min(1).max(200).default(50) }).prefault({});

export const retryJobsInput = z
  .object({ queue: queue.optional(), id: z.string().min(1).max(256).optional() })
  .refine((input) => input.id === undefined || input.queue !== undefined, { error: "Give the queue of the run to retry.", path: ["queue"] })
  .prefault({});

export const listAuditInput = z
  .object({
    ...page,
    actor: z.string().min(1).max(64).optional(),
    procedure: z.string().min(1).max(64).optional(),
    accountId: accountId.optional(),
    ...timeRange,
  })
  .prefault({});

/** SPEC 10: a Weekly Boost, bought once per idempotency key. */
export const buyWeeklyBoostInput = z.object({ accountId, idempotencyKey });

export const listLedgerInput = z.object({
  accountId,
  limit: z.number().int().min(1).max(500).default(50),
  before: z.string().max(64).optional(),
});
