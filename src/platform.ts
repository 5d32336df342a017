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
import { createKeyUsageRecorder } from "./domain/key-usage.js";
import { createKeys } from "./domain/keys.js";
import { createLedger } from "./domain/ledger.js";
import { createRequestLimits } from "./domain/limits/request-limits.js";
import type { Logger } from "./domain/logger.js";
import { createRequestLog } from "./domain/request-log.js";
import { createInProcessScheduler } from "./domain/jobs/in-process-scheduler.js";
import { releaseExpiredHoldsJob } from "./domain/jobs/release-expired-holds.js";
import { createDashboardGraphQL } from "./graphql/yoga.js";
import { openCoordination } from "./infra/coordination.js";
import { type Database, openPglite, openPostgres, pingDatabase } from "./infra/db.js";
import { createLogger } from "./infra/logger.js";
import { ensureOpsToken } from "./infra/ops-token.js";
import { createUpstreamHttp } from "./infra/upstream-http.js";
import { createOpenAIFacade } from "./rest/app.js";
import { createErrorHandler, renderError } from "./rest/errors.js";
import { requestId } from "./rest/request-id.js";
import { createOpsHandler } from "./trpc/handler.js";

export interface PlatformOverrides {
  clock?: Clock;
  logger?: Logger;
  /** An already open database (tests share one per file). */
  database?: Database;
}

const KEY_USAGE_FLUSH_MS = 5_000;

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
  const billing = createBilling({ db, clock, ledger, holdTtlMs: config.holdTtlSeconds * 1000 });
  const accounts = createAccounts({ db, clock, ledger, bus });
  const keys = createKeys({ db, clock, bus });
  const keyUsage = createKeyUsageRecorder({ db, clock, logger });
  const auth = createApiKeyAuth({ callers: createCallerCache({ keys, bus }), clock, keyUsage });
  const limits = createRequestLimits({
    store: coordination.limitStore,
    clock,
    logger,
    policy: config.redisDownPolicy,
    streamSlotTtlMs: config.streamSlotTtlSeconds * 1000,
  });
  const requestLog = createRequestLog({ db });
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
  const chat = createChatService({ catalog, providerFor, billing, limits, requestLog, clock, logger, safetyPrompt: config.safetyPrompt });

  const scheduler = createInProcessScheduler({
    onError: (error, job) => logger.error({ err: error, job }, "scheduled job failed"),
  });
  scheduler.schedule(releaseExpiredHoldsJob(billing));
  scheduler.schedule({ name: "flush-key-usage", everyMs: KEY_USAGE_FLUSH_MS, run: keyUsage.flush });

  const opsToken = config.opsToken ?? ensureOpsToken(config.dataDir);
  const ops = createOpsHandler({ services: { db, accounts, keys, ledger }, opsToken, logger });
  const graphql = createDashboardGraphQL();

  const app = new Hono()
    .use(requestId(() => clock.now()))
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const database = await pingDatabase(db).then(
        () => "connected",
        () => "unreachable",
      );
      const redis = coordination.status();
      // Without Redis a fail-open instance still serves (unlimited); a fail-closed one refuses.
      const ready = database === "connected" && (redis !== "unreachable" || config.redisDownPolicy === "fail-open");
      return c.json({ status: ready ? "ready" : "unavailable", database, redis }, ready ? 200 : 503);
    })
    .route("/v1", createOpenAIFacade({ auth, chat, catalog, limits, clock, maxBodyBytes: config.maxBodyBytes }))
    .all("/trpc/*", (c) => ops(c.req.raw))
    .all("/graphql", (c) => graphql.fetch(c.req.raw));
  app.onError(createErrorHandler(logger));
  app.notFound((c) => renderError(c, new DomainError("not_found", `No route ${c.req.method} ${c.req.path}.`)));

  return {
    fetch: app.fetch,
    services: { db, accounts, keys, ledger, billing, chat, catalog },
    database,
    opsToken,
    logger,
    async close() {
      await scheduler.stop();
      await keyUsage.flush();
      await http.close();
      await coordination.close();
      if (!overrides.database) await database.close();
    },
  };
}

export type Platform = Awaited<ReturnType<typeof createPlatform>>;
