import { type Config, ConfigError, type ScanningConfig } from "./config.js";
import type { Logger } from "./domain/logger.js";
import { createClamdScanner } from "./infra/clamd-scanner.js";

/**
 * SPEC 7 at start: whether clamd answers (null when scanning is off). With
 * FILE_SCANNING=auto a production start refuses to go on without it, before
 * touching the database; FILE_SCANNING=off is the operator's explicit way out.
 */
export async function checkScanner(scanning: ScanningConfig): Promise<boolean | null> {
  if (scanning.mode === "off") return null;
  const answers = await createClamdScanner({ url: scanning.clamdUrl }).ping();
  if (!answers && scanning.mode === "required" && scanning.productionBecause) {
    throw new ConfigError(
      `FILE_SCANNING=auto and no clamd answers at CLAMD_URL=${scanning.clamdUrl}, on a production start (${scanning.productionBecause}): ` +
        "start clamd or point CLAMD_URL at one, or set FILE_SCANNING=off to store uploads without a virus scan.",
    );
  }
  return answers;
}

/** The embedded default without clamd starts anyway (SPEC 7), and its log says uploads go unscanned. */
export function warnOfUnscannedUploads(scanning: ScanningConfig, scannerAnswers: boolean | null, logger: Logger): void {
  if (scanning.mode === "when-answering" && !scannerAnswers) {
    logger.warn({ clamdUrl: scanning.clamdUrl }, 'no clamd answers: uploads are stored WITHOUT a virus scan (scan_status "unscanned") until one does');
  }
}

/**
 * Why a port could not be bound, as one line naming its variables (HOST and
 * PORT, or e.g. ADMIN_HOST and ADMIN_PORT); any other failure is returned as it is.
 */
export function explainListenFailure(
  error: unknown,
  { host, port }: { host: string; port: number },
  variables: { host: string; port: string } = { host: "HOST", port: "PORT" },
): unknown {
  switch ((error as NodeJS.ErrnoException).code) {
    case "EADDRINUSE":
      return new ConfigError(`${variables.port} ${port} is already in use on ${host}: stop what listens there, or set ${variables.port} to a free port.`);
    case "EACCES":
      return new ConfigError(`${variables.port} ${port} on ${host} needs privileges this process lacks: set ${variables.port} to 1024 or above.`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return new ConfigError(
        `${variables.host} ${host} is not an address of this machine: use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).`,
      );
    default:
      return error;
  }
}

// PostgreSQL's refusals to let this user into this database (no such role or database, wrong password, pg_hba).
const NOT_LET_IN = new Set(["28000", "28P01", "3D000"]);

/** PostgreSQL that cannot be reached or entered, as one line naming DATABASE_URL (never its password); any other failure is returned as it is. */
export function explainDatabaseFailure(error: unknown, database: Config["database"]): unknown {
  if (database.kind !== "postgres") return error;
  const { code, syscall } = error as NodeJS.ErrnoException;
  const unreachable = syscall === "connect" || syscall === "getaddrinfo" || code === "CONNECT_TIMEOUT";
  if (unreachable) return new ConfigError(`DATABASE_URL: PostgreSQL at ${database.address} cannot be reached (${code}).`);
  if (code && NOT_LET_IN.has(code)) return new ConfigError(`DATABASE_URL: PostgreSQL at ${database.address} refused: ${(error as Error).message}.`);
  return error;
}

/**
 * Ends a start that `error` refused: a configuration mistake with one line
 * naming it (`<who> did not start: …`) and exit code 1; anything else is a bug
 * and keeps its stack.
 */
export const refuseToStart =
  (who: string) =>
  (error: unknown): never => {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${who} did not start: ${error.message}\n`);
    process.exit(1);
  };
