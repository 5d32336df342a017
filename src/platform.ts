import { availableParallelism } from "node:os";
import { Hono } from "hono";
import type { Config } from "./config.js";
import { createAccounts } from "./domain/accounts.js";
import { createApiKeyAuth } from "./domain/auth.js";
import { createBilling } from "./domain/billing.js";
import { createCallerCache } from "./domain/caller-cache.js";
import { type Clock, systemClock } from "./domain/clock.js";
import { DomainError } from "./domain/errors.js";
import { createChatService } from "./domain/inference/chat.js";
import { createModelCatalog, type ModelConfig } from "./domain/inference/model-table.js";
import type { ChatProvider } from "./domain/inference/provider.js";
import { createChatProvider } from "./domain/inference/providers/index.js";
import { createFiles } from "./domain/files/files.js";
import { createKeyUsageRecorder } from "./domain/key-usage.js";
import { createKeys } from "./domain/keys.js";
import { createLedger } from "./domain/ledger.js";
import { createAuthFailureLimits } from "./domain/limits/auth-failure-limits.js";
import { createRequestLimits } from "./domain/limits/request-limits.js";
import type { Logger } from "./domain/logger.js";
import { createRequestLog } from "./domain/request-log.js";
import { createUnknownKeyCache } from "./domain/unknown-key-cache.js";
import { createInProcessScheduler } from "./domain/jobs/in-process-scheduler.js";
import { fileRetentionJob } from "./domain/jobs/file-retention.js";
import { settleAbandonedHoldsJob } from "./domain/jobs/settle-abandoned-holds.js";
import { createCheckpoints } from "./domain/metering/checkpoints.js";
import { createMetering } from "./domain/metering/metered-call.js";
import { createDashboardGraphQL } from "./graphql/yoga.js";
import { openCoordination } from "./infra/coordination.js";
import { type Database, openPglite, openPostgres, pingDatabase } from "./infra/db.js";
import { createClamdScanner } from "./infra/clamd-scanner.js";
import { createLocalBlobStore } from "./infra/local-blob-store.js";
import { createLogger } from "./infra/logger.js";
import { createQueueScheduler } from "./infra/queue-scheduler.js";
import { ensureOpsToken } from "./infra/ops-token.js";
import { createUpstreamHttp } from "./infra/upstream-http.js";
import { createOpenAIFacade } from "./rest/app.js";
import { clientAddress } from "./rest/client-address.js";
import { createErrorHandler, renderError } from "./rest/errors.js";
import { healthRoutes } from "./rest/health.js";
import { requestId } from "./rest/request-id.js";
import { createOpsHandler } from "./trpc/handler.js";

export interface PlatformOverrides {
  clock?: Clock;
  logger?: Logger;
  /** An already open database (tests share one per file). */
  database?: Database;
}

const KEY_USAGE_FLUSH_MS = 5_000;
const DRAIN_POLL_MS = 50;
// After the grace period, how long the stopped requests' settles may take before the process exits anyway
// (what has not committed by then is settled by the sweeper from the checkpoint written on the way out).
const SHUTDOWN_SETTLE_MS = 10_000;
// Uploads take seconds; a staged file an hour old was left by a process that died mid-upload.
const STAGING_SWEEP_MS = 3_600_000;

/** Builds infra, domain services and the HTTP surfaces from one config. */
export async function createPlatform(config: Config, overrides: PlatformOverrides = {}) {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const database =
    overrides.database ??
    (config.database.kind === "postgres" ? await openPostgres(config.database.url) : await openPglite(config.database.dataDir));
  const { db } = database;

  const coordination = openCoordination(config.redis, logger);
  const { bus } = coordination;

  const ledger = createLedger({ clock });
  const billing = createBilling({ db, clock, holdTtlMs: config.holdTtlSeconds * 1000 });
  const accounts = createAccounts({ db, clock, ledger, bus });
  const keys = createKeys({ db, clock, bus });
  const keyUsage = createKeyUsageRecorder({ db, clock, logger });
  const authFailures = createAuthFailureLimits({
    store: coordination.limitStore,
    clock,
    logger,
    failuresPerMinute: config.authFailuresPerMinute,
  });
  const callers = createCallerCache({ keys: createUnknownKeyCache({ keys, bus }), bus });
  const auth = createApiKeyAuth({ callers, clock, keyUsage, failures: authFailures });
  const limits = createRequestLimits({
    store: coordination.limitStore,
    clock,
    logger,
    policy: config.redisDownPolicy,
    streamSlotTtlMs: config.streamSlotTtlSeconds * 1000,
  });
  const requestLog = createRequestLog({ db });
  const blobStore = createLocalBlobStore({ root: config.files.dir });
  const scanner = config.files.clamdUrl ? createClamdScanner({ url: config.files.clamdUrl }) : null;
  // Health checks must answer quickly even when clamd hangs; scans may take their time.
  const scannerProbe = config.files.clamdUrl ? createClamdScanner({ url: config.files.clamdUrl, timeoutMs: 2_000 }) : null;
  if (!scanner) logger.warn({}, "FILE_SCANNING=off: uploaded files are stored WITHOUT a virus scan");
  const files = createFiles({ db, clock, blobStore, scanner, maxConcurrentExtractions: Math.max(1, availableParallelism()) });
  const catalog = createModelCatalog(config.models);

  const http = createUpstreamHttp();
  const providers = new Map<string, ChatProvider>();
  const providerFor = (model: ModelConfig): ChatProvider => {
    let provider = providers.get(model.id);
    if (!provider) {
      provider = createChatProvider(model, { http, maxAttempts: config.upstreamMaxAttempts });
      providers.set(model.id, provider);
    }
    return provider;
  };
  const checkpoints = createCheckpoints({ billing, everyMs: config.holdCheckpointSeconds * 1000, logger });
  const metering = createMetering({ billing, requestLog, limits, checkpoints, clock, logger });
  const chat = createChatService({ catalog, providerFor, metering, files, clock, safetyPrompt: config.safetyPrompt });

  // Jobs about this process's own state run here; jobs about shared state run once per interval across instances.
  const localJobs = createInProcessScheduler({
    onError: (error, job) => logger.error({ err: error, job }, "scheduled job failed"),
  });
  const sharedJobs = config.redis ? createQueueScheduler({ ...config.redis, logger }) : localJobs;
  sharedJobs.schedule(settleAbandonedHoldsJob(billing, { everyMs: config.holdSweepSeconds * 1000 }));
  sharedJobs.schedule(fileRetentionJob(files, { everyMs: config.files.retentionSweepSeconds * 1000 }));
  localJobs.schedule({
    name: "sweep-upload-staging",
    everyMs: STAGING_SWEEP_MS,
    run: async () => void (await blobStore.sweepStaging(STAGING_SWEEP_MS)),
  });
  localJobs.schedule({ name: "flush-key-usage", everyMs: KEY_USAGE_FLUSH_MS, run: keyUsage.flush });

  const opsToken = config.opsToken ?? ensureOpsToken(config.dataDir);
  const ops = createOpsHandler({ services: { db, accounts, keys, ledger }, opsToken, logger, authFailures });
  const graphql = createDashboardGraphQL({ dashboardOrigins: config.dashboardOrigins, logger });

  let draining = false;
  let requestsInFlight = 0;
  const app = new Hono()
    .use(async (_c, next) => {
      requestsInFlight++;
      try {
        await next();
      } finally {
        requestsInFlight--;
      }
    })
    .use(requestId(() => clock.now()))
    .use(clientAddress(config.trustedProxyHops))
    .route(
      "/",
      healthRoutes({
        isDraining: () => draining,
        pingDatabase: () => pingDatabase(db),
        coordination,
        redisDownPolicy: config.redisDownPolicy,
        scanner: scannerProbe,
      }),
    )
    .route("/v1", createOpenAIFacade({ auth, chat, catalog, limits, files, clock, maxBodyBytes: config.maxBodyBytes }))
    .all("/trpc/*", (c) => ops(c.req.raw, c.get("clientAddress")))
    .all("/graphql", (c) => graphql.fetch(c.req.raw));
  app.onError(createErrorHandler(logger));
  app.notFound((c) => renderError(c, new DomainError("not_found", `No route ${c.req.method} ${c.req.path}.`)));

  return {
    fetch: app.fetch,
    services: { db, accounts, keys, ledger, billing, chat, catalog, files, scannerProbe },
    database,
    opsToken,
    logger,
    /**
     * SIGTERM (SPEC 13): lets requests in flight (uploads, streams, anything)
     * finish for up to `graceMs`, then stops the metered calls still running,
     * billing what they delivered, and waits for every settle and record.
     */
    async drain(graceMs: number) {
      draining = true;
      const deadline = Date.now() + graceMs;
      while ((requestsInFlight > 0 || metering.inFlight > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      }
      await metering.drain({ graceMs: Math.max(0, deadline - Date.now()), settleMs: SHUTDOWN_SETTLE_MS });
    },
    async close() {
      checkpoints.stop();
      await localJobs.stop();
      if (sharedJobs !== localJobs) await sharedJobs.stop();
      await keyUsage.flush();
      await http.close();
      await coordination.close();
      if (!overrides.database) await database.close();
    },
  };
}

export type Platform = Awaited<ReturnType<typeof createPlatform>>;
