import { availableParallelism } from "node:os";
import { Hono } from "hono";
import type { Config } from "./config.js";
import { createAccountClaims } from "./domain/account-claims.js";
import { createAccounts } from "./domain/accounts.js";
import { createAudit } from "./domain/audit.js";
import { createApiKeyAuth } from "./domain/auth.js";
import { createBilling } from "./domain/billing.js";
import { createCallerCache } from "./domain/caller-cache.js";
import { createCredits } from "./domain/credits.js";
import { createDashboardAccounts } from "./domain/dashboard-accounts.js";
import { type Clock, systemClock } from "./domain/clock.js";
import { DomainError } from "./domain/errors.js";
import { createChatService } from "./domain/inference/chat.js";
import { createModelCatalog, type EndpointCapability, type ModelConfig, type ModelTable } from "./domain/inference/model-table.js";
import { createModelProvider } from "./domain/inference/providers/index.js";
import type { Provider } from "./domain/inference/providers/failover.js";
import { createSurfaces } from "./domain/surfaces/index.js";
import { createFiles } from "./domain/files/files.js";
import { createIdentityDirectory } from "./domain/identity-directory.js";
import { createKeyUsageRecorder } from "./domain/key-usage.js";
import { createKeys } from "./domain/keys.js";
import { createLedger } from "./domain/ledger.js";
import { createAuthFailureLimits } from "./domain/limits/auth-failure-limits.js";
import { createRequestLimits } from "./domain/limits/request-limits.js";
import type { Logger } from "./domain/logger.js";
import { createRequestHistory } from "./domain/request-history.js";
import { createRequestLog } from "./domain/request-log.js";
import { createSessions } from "./domain/sessions.js";
import { createUsageSeries } from "./domain/usage-series.js";
import { createUnknownKeyCache } from "./domain/unknown-key-cache.js";
import { createInProcessScheduler } from "./domain/jobs/in-process-scheduler.js";
import { createJobOperations } from "./domain/jobs/job-monitor.js";
import { fileRetentionJob } from "./domain/jobs/file-retention.js";
import { settleAbandonedHoldsJob } from "./domain/jobs/settle-abandoned-holds.js";
import { createTopUpCheckouts } from "./domain/top-ups/checkout.js";
import { createPaymentEvents, STRIPE_EVENT_JOB } from "./domain/top-ups/payment-events.js";
import { reconcileTopUpsJob } from "./domain/top-ups/reconcile.js";
import { createStripeWebhookIntake } from "./domain/top-ups/webhook-intake.js";
import { createBullmqJobQueue } from "./infra/bullmq-job-queue.js";
import { createInProcessJobQueue } from "./infra/in-process-job-queue.js";
import { createStripeGateway } from "./infra/stripe-gateway.js";
import { stripeWebhookRoutes } from "./rest/stripe-webhook.js";
import { createCheckpoints } from "./domain/metering/checkpoints.js";
import { createMetering } from "./domain/metering/metered-call.js";
import { createWeeklyQuota } from "./domain/weekly-quota.js";
import { createCallerWatch } from "./domain/realtime/caller-watch.js";
import { createRealtimeSessions } from "./domain/realtime/realtime-sessions.js";
import { connectRealtimeUpstream } from "./infra/realtime-upstream-socket.js";
import { startDemoRealtimeServer } from "./infra/demo-realtime-server.js";
import { createRealtimeRelay } from "./rest/realtime/realtime-relay.js";
import { createDashboardGraphQL } from "./graphql/yoga.js";
import { openCoordination } from "./infra/coordination.js";
import { type Database, openPglite, openPostgres, pingDatabase } from "./infra/db.js";
import { createClamdScanner } from "./infra/clamd-scanner.js";
import { createLocalBlobStore } from "./infra/local-blob-store.js";
import { accessLineLogger, createLogger } from "./infra/logger.js";
import { createMetrics } from "./infra/metrics.js";
import { createQueueScheduler } from "./infra/queue-scheduler.js";
import { resolveOpsTokens } from "./infra/ops-token.js";
import { createUpstreamHttp } from "./infra/upstream-http.js";
import { accessLog } from "./rest/access-log.js";
import { createOpenAIFacade, createPlainChatApi } from "./rest/app.js";
import { clientAddress, type ClientAddressVariables } from "./rest/client-address.js";
import { createErrorHandler, renderError } from "./rest/errors.js";
import { dashboardAppRoutes } from "./rest/dashboard-app.js";
import { healthRoutes } from "./rest/health.js";
import { metricsEndpoint, opsTokenRequired } from "./rest/metrics-endpoint.js";
import { requestId } from "./rest/request-id.js";
import { isOpsToken } from "./trpc/context.js";
import { createOpsHandler } from "./trpc/handler.js";

export interface PlatformOverrides {
  clock?: Clock;
  logger?: Logger;
  /** An already open database (tests share one per file). */
  database?: Database;
}

const KEY_USAGE_FLUSH_MS = 5_000;
// Few enough to make guessing one account's password hopeless, enough for a person mistyping.
const SIGN_IN_FAILURES_PER_EMAIL_PER_MINUTE = 5;
const DRAIN_POLL_MS = 50;
// After the grace period, how long the stopped requests' settles may take before the process exits anyway
// (what has not committed by then is settled by the sweeper from the checkpoint written on the way out).
const SHUTDOWN_SETTLE_MS = 10_000;
// Uploads take seconds; a staged file an hour old was left by a process that died mid-upload.
const STAGING_SWEEP_MS = 3_600_000;
// Ended sessions open nothing; deleting them only keeps the table small.
const SESSION_CLEANUP_MS = 6 * 3_600_000;

/** Builds infra, domain services and the HTTP surfaces from one config. */
export async function createPlatform(config: Config, overrides: PlatformOverrides = {}) {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const database =
    overrides.database ??
    (config.database.kind === "postgres" ? await openPostgres(config.database.url) : await openPglite(config.database.dataDir));
  const { db } = database;

  const metrics = createMetrics();
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
  const sessions = createSessions({ db, clock });
  const blobStore = createLocalBlobStore({ root: config.files.dir });
  const { scanning } = config.files;
  const scanner = scanning.mode === "off" ? null : createClamdScanner({ url: scanning.clamdUrl });
  if (!scanner) logger.warn({}, "FILE_SCANNING=off: uploaded files are stored WITHOUT a virus scan");
  const files = createFiles({
    db,
    clock,
    blobStore,
    scanner,
    storeUnscannedWhileScannerDown: scanning.mode === "when-answering",
    logger,
    maxConcurrentExtractions: Math.max(1, availableParallelism()),
  });
  const catalog = createModelCatalog(config.models);

  const http = createUpstreamHttp();
  const providers = new Map<string, Provider>();
  const providerFor = (model: ModelConfig, capability: EndpointCapability = "chat"): Provider => {
    const key = `${model.id}\u0000${capability}`;
    let provider = providers.get(key);
    if (!provider) {
      provider = createModelProvider(model, capability, { http, maxAttempts: config.upstreamMaxAttempts, logger, metrics });
      providers.set(key, provider);
    }
    return provider;
  };
  const checkpoints = createCheckpoints({ billing, everyMs: config.holdCheckpointSeconds * 1000, logger });
  const metering = createMetering({ billing, requestLog, limits, checkpoints, clock, logger, metrics });
  metrics.gauge("sentx_active_streams", "Streamed answers in progress.", () => metering.activeStreams);
  metrics.gauge("sentx_holds_outstanding", "Credit holds this instance reserved and has not yet settled or released.", () => metering.holdsOutstanding);
  const chat = createChatService({ catalog, providerFor, metering, files, clock, safetyPrompt: config.safetyPrompt });
  const surfaces = createSurfaces({ catalog, providerFor, metering, availableCents: billing.availableCents });
  const callerWatch = createCallerWatch({ bus });
  const demoRealtime = offersDemoRealtime(config.models) ? await startDemoRealtimeServer() : null;
  const accessLogger = accessLineLogger(logger);
  const realtime = createRealtimeRelay({
    auth,
    limits,
    sessions: createRealtimeSessions({ catalog, metering, callerWatch, ...(demoRealtime && { demoBaseUrl: demoRealtime.baseUrl }) }),
    connectUpstream: connectRealtimeUpstream,
    clock,
    logger,
    accessLogger,
    metrics,
    trustedProxyHops: config.trustedProxyHops,
    settings: config.realtime,
  });

  // Jobs about this process's own state run here; jobs about shared state run once per interval across instances.
  const localJobs = createInProcessScheduler({
    onError: (error, job) => logger.error({ err: error, job }, "scheduled job failed"),
  });
  const sharedJobs = config.redis ? createQueueScheduler({ ...config.redis, logger, work: config.runsSharedJobs }) : localJobs;
  sharedJobs.schedule(settleAbandonedHoldsJob(billing, { everyMs: config.holdSweepSeconds * 1000 }));
  sharedJobs.schedule(fileRetentionJob(files, { everyMs: config.files.retentionSweepSeconds * 1000 }));
  sharedJobs.schedule({
    name: "delete-ended-sessions",
    everyMs: SESSION_CLEANUP_MS,
    run: async () => {
      while ((await sessions.deleteEnded()) > 0);
    },
  });
  localJobs.schedule({
    name: "sweep-upload-staging",
    everyMs: STAGING_SWEEP_MS,
    run: async () => void (await blobStore.sweepStaging(STAGING_SWEEP_MS)),
  });
  localJobs.schedule({ name: "flush-key-usage", everyMs: KEY_USAGE_FLUSH_MS, run: keyUsage.flush });
  // One-off jobs (Stripe's events) go where the shared jobs go: Redis, run by whichever process works the queue.
  const oneOffJobs = config.redis
    ? createBullmqJobQueue({ ...config.redis, logger, work: config.runsSharedJobs })
    : createInProcessJobQueue({
        onError: (error, job) => logger.error({ err: error, job: job.name, jobId: job.id }, "job failed for good; ops can retry it (jobs.retry)"),
      });
  const stripe = config.stripe && createStripeGateway(config.stripe);
  const payments = createPaymentEvents({ db, clock, ledger, logger });
  oneOffJobs.handle(STRIPE_EVENT_JOB, payments.apply);
  // A shared job: catches the payments whose webhook event was lost.
  if (stripe) sharedJobs.schedule(reconcileTopUpsJob({ db, clock, logger, stripe, payments }));
  const topUps = createTopUpCheckouts({ db, clock, logger, stripe, publicBaseUrl: config.publicBaseUrl });

  const jobs = createJobOperations([...(sharedJobs === localJobs ? [localJobs] : [sharedJobs, localJobs]), oneOffJobs]);
  // The counts the ops API shows; a queue that does not answer leaves its series out, not the whole scrape.
  metrics.gauge("sentx_queue_jobs", "Jobs in each queue by state, as its runner counts them.", async () =>
    (await jobs.stats().catch(() => [])).flatMap(({ queue, counts }) =>
      Object.entries(counts).map(([state, value]) => ({ labels: { queue, state }, value })),
    ),
  );
  const opsTokens = resolveOpsTokens(config);
  const claims = createAccountClaims({ db, clock, sessions, failures: authFailures });
  const requests = createRequestHistory({ db });
  const identities = createIdentityDirectory({ db });
  const ops = createOpsHandler({
    services: {
      db,
      accounts,
      claims,
      keys,
      ledger,
      files,
      credits: createCredits({ db, ledger }),
      requests,
      identities,
      jobs,
      audit: createAudit({ db, clock }),
      weeklyQuota: createWeeklyQuota({ db, clock, ledger }),
    },
    opsTokens,
    logger,
    authFailures,
  });
  const dashboardAccounts = createDashboardAccounts({
    db,
    accounts,
    sessions,
    addressFailures: authFailures,
    emailFailures: createAuthFailureLimits({
      store: coordination.limitStore,
      clock,
      logger,
      failuresPerMinute: SIGN_IN_FAILURES_PER_EMAIL_PER_MINUTE,
      subject: { keyPrefix: "sign-in-failures", described: "this account" },
    }),
  });
  const graphql = createDashboardGraphQL({
    dashboardOrigins: config.dashboardOrigins,
    devTools: config.graphqlDevTools,
    logger,
    accounts,
    dashboardAccounts,
    claims,
    sessions,
    keys,
    files,
    accountLedger: (accountId, page) => ledger.list(db, accountId, page),
    identities,
    requests,
    usage: createUsageSeries({ db }),
    topUps,
  });

  let draining = false;
  let requestsInFlight = 0;
  const accessLines = accessLog({ logger: accessLogger, metrics });
  /** A listener's app: each request counted for the drain, identified, logged and measured; errors in the SPEC 8 shape. */
  const listenerApp = () => {
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
      .use(accessLines);
    app.onError(createErrorHandler(logger));
    app.notFound((c) => renderError(c, new DomainError("not_found", `No route ${c.req.method} ${c.req.path}.`)));
    return app;
  };
  const opsAndMetrics = ({ metricsNeedToken }: { metricsNeedToken: boolean }) => {
    const routes = new Hono<{ Variables: ClientAddressVariables }>();
    if (metricsNeedToken) routes.use("/metrics", opsTokenRequired((authorization) => isOpsToken(authorization ?? null, opsTokens), authFailures));
    return routes.get("/metrics", metricsEndpoint(metrics)).all("/trpc/*", (c) => ops(c.req.raw, c.get("clientAddress")));
  };

  const app = listenerApp()
    .route(
      "/",
      healthRoutes({
        isDraining: () => draining,
        pingDatabase: () => pingDatabase(db),
        coordination,
        redisDownPolicy: config.redisDownPolicy,
        scanner,
      }),
    )
    .route(
      "/v1",
      createOpenAIFacade({
        auth,
        chat,
        catalog,
        limits,
        files,
        clock,
        maxBodyBytes: config.maxBodyBytes,
        surfaces,
        stage: (bytes, options) => blobStore.stage(bytes, options),
      }),
    )
    .route(
      "/api/v1",
      createPlainChatApi({ auth, chat, limits, clock, maxBodyBytes: config.maxBodyBytes, defaultModel: config.models.defaultModel }),
    )
    .route("/", stripeWebhookRoutes(createStripeWebhookIntake({ stripe, queue: oneOffJobs })))
    .route("/", new Hono<{ Variables: ClientAddressVariables }>().all("/graphql", (c) => graphql.fetch(c.req.raw, c.get("clientAddress"))))
    // The web dashboard, a page on the API above (web/; built by npm run web:build).
    .route("/", dashboardAppRoutes());
  // With ADMIN_PORT the ops API and /metrics get a listener of their own, private by where it binds, so
  // /metrics is open there; without it they share the public port, and /metrics wants the ops token.
  const admin = config.admin && { ...config.admin, fetch: listenerApp().route("/", opsAndMetrics({ metricsNeedToken: false })).fetch };
  if (!admin) app.route("/", opsAndMetrics({ metricsNeedToken: true }));

  return {
    fetch: app.fetch,
    /** WebSocket upgrades (GET /v1/realtime); any other path is refused with 404. Pass it to `listen`. */
    upgrade: realtime.upgrade,
    /** The admin listener's host, port and app; null without ADMIN_PORT. */
    admin,
    services: { db, accounts, keys, ledger, billing, chat, catalog, files },
    database,
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
      callerWatch.stop();
      realtime.closeAll();
      await demoRealtime?.close();
      checkpoints.stop();
      await localJobs.stop();
      // Together: with Redis gone each waits out its stop deadline, and the waits must not add up.
      await Promise.all([sharedJobs === localJobs ? null : sharedJobs.stop(), oneOffJobs.stop()]);
      await keyUsage.flush();
      await http.close();
      await coordination.close();
      if (!overrides.database) await database.close();
    },
  };
}

export type Platform = Awaited<ReturnType<typeof createPlatform>>;

/** Whether a demo model offers realtime, so the demo's loopback realtime endpoint is needed. */
const offersDemoRealtime = (table: ModelTable) =>
  table.models.some((model) => model.capabilities.includes("realtime") && model.upstreams.some((upstream) => upstream.provider === "demo"));
