import type { AccountLimits } from "../schema/accounts.js";

// SPEC 6 defaults; ops may override any of them per account.
export const defaultLimits: Required<AccountLimits> = {
  requestsPerMinute: 60,
  concurrentStreams: 5,
  keyCreationsPerHour: 5,
  maxActiveKeys: 25,
};

export const effectiveLimits = (overrides: AccountLimits): Required<AccountLimits> => ({
  ...defaultLimits,
  ...overrides,
});
