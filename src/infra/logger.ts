import { type DestinationStream, type LoggerOptions, type Logger as PinoLogger, pino } from "pino";
import type { Logger } from "../domain/logger.js";

// A key or token that reached a message or an error despite the field rules
// below: an API key (ours, or an upstream's `sk-proj-…`), a generated ops
// token, a Stripe secret or restricted key or webhook secret, or whatever
// follows "Bearer". Key display prefixes (`sk-AbCd`) are too short to match.
const SECRET_SHAPES = /\b(sk-|ops_|[sr]k_(?:test|live)_|whsec_)[\w-]{16,}|\b(Bearer\s+)[^\s"\\]+/gi;

const options = (level: string): LoggerOptions => ({
  level,
  base: { service: "sentx" },
  // Keys and tokens never reach a log line: fields named for them are censored…
  redact: ["authorization", "apiKey", "key", "opsToken", "*.authorization", "*.apiKey", "*.key", "*.opsToken", "req.headers.authorization"],
  // …and anything shaped like one is cut from the finished line, whatever field it hid in.
  hooks: { streamWrite: (line) => line.replace(SECRET_SHAPES, "$1$2[redacted]") },
});

/** Pino to stdout, or to `destination` (tests read the lines). */
export const createLogger = (level: string, destination?: DestinationStream) =>
  destination ? pino(options(level), destination) : pino(options(level));

/**
 * For the access log, a line per request: its record is a fixed shape of
 * ours with no field a secret could be in, so it skips the field redaction
 * (whose wildcard paths cost several µs a line); the shape scrub still runs.
 * A logger that is not pino is used as it is.
 */
export function accessLineLogger(logger: Logger): Logger {
  const { child } = logger as Partial<Pick<PinoLogger, "child">>;
  return child ? child.call(logger, {}, { redact: [] }) : logger;
}
