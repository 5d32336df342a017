import { accountsRouter } from "./routers/accounts.js";
import { creditsRouter, ledgerRouter } from "./routers/credits.js";
import { filesRouter } from "./routers/files.js";
import { auditRouter, jobsRouter } from "./routers/jobs.js";
import { keysRouter } from "./routers/keys.js";
import { plansRouter } from "./routers/plans.js";
import { conversationsRouter, endUsersRouter, requestsRouter } from "./routers/usage.js";
import { router } from "./trpc.js";

// SPEC 12. Queries read; every mutation is audited in its own transaction (trpc.ts, opsMutation).
export const opsRouter = router({
  accounts: accountsRouter,
  credits: creditsRouter,
  ledger: ledgerRouter,
  keys: keysRouter,
  files: filesRouter,
  requests: requestsRouter,
  endUsers: endUsersRouter,
  conversations: conversationsRouter,
  jobs: jobsRouter,
  audit: auditRouter,
  plans: plansRouter,
});

export type OpsRouter = typeof opsRouter;
