import { loadConfig } from "./config.js";
import { ensureFirstAccount } from "./domain/bootstrap.js";
import { listen } from "./infra/http-server.js";
import { removeServerUrl, writeServerUrl } from "./infra/server-url-file.js";
import { createPlatform } from "./platform.js";
import { printBanner } from "./banner.js";
import { checkScanner, explainDatabaseFailure, explainListenFailure, refuseToStart, warnOfUnscannedUploads } from "./start-checks.js";

/** Everything that can refuse the start, done before the first account is made: a refused start leaves no key behind. */
async function start() {
  const config = loadConfig();
  const scannerAnswers = await checkScanner(config.files.scanning);
  const platform = await createPlatform(config).catch((error: unknown) => {
    throw explainDatabaseFailure(error, config.database);
  });
  try {
    warnOfUnscannedUploads(config.files.scanning, scannerAnswers, platform.logger);
    const server = await listen(platform.fetch, config.host, config.port, config.http, platform.upgrade).catch((error: unknown) => {
      throw explainListenFailure(error, config);
    });
    // With ADMIN_PORT the ops API (and /metrics) answer only there, so that is where the ops CLI must go.
    const adminServer = platform.admin && (await listen(platform.admin.fetch, platform.admin.host, platform.admin.port, config.http));
    if (adminServer) platform.logger.info({ url: adminServer.url }, "ops API and /metrics listening on the admin listener");
    writeServerUrl(config.dataDir, (adminServer ?? server).url);
    return { config, platform, server, adminServer, scannerAnswers };
  } catch (error) {
    await platform.close();
    throw error;
  }
}

const { config, platform, server, adminServer, scannerAnswers } = await start().catch(refuseToStart("SentX"));

/**
 * SPEC 13: the first account and its key are made only now that the port is
 * bound, and shown at once; a start that failed earlier created nothing, so
 * the next one shows the key.
 */
async function greet() {
  const firstRun = config.bootstrap ? await ensureFirstAccount(platform.services, config.bootstrapCreditsCents) : null;
  printBanner({ config, baseUrl: config.publicBaseUrl ?? server.url, firstRun, scannerAnswers });
}

/**
 * SPEC 13: SIGTERM drains. New connections are refused, requests in flight
 * get the grace period, what is still running then is stopped and billed for
 * what it delivered, every settle and record is written, and Redis and the
 * database close last. A second signal means "now".
 */
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    platform.logger.warn({ signal }, "second signal: exiting without waiting");
    process.exit(1);
  }
  stopping = true;
  platform.logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, "shutting down: draining requests in flight");
  // A key that was made is shown before the database closes.
  await greeting.catch(() => {});
  server.stopAccepting();
  adminServer?.stopAccepting();
  await platform.drain(config.shutdownGraceSeconds * 1000);
  await server.close();
  await adminServer?.close();
  removeServerUrl(config.dataDir);
  await platform.close();
  platform.logger.info({}, "shut down cleanly");
  process.exit(0);
}
// Before the first account is made: a signal from here on drains, so none falls between a key's creation and its banner.
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
const greeting = greet();
await greeting;
