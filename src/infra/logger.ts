import { pino } from "pino";

export const createLogger = (level: string) =>
  pino({
    level,
    base: { service: "sentx" },
    // Keys and tokens never reach a log line.
    redact: ["req.headers.authorization", "*.authorization", "*.apiKey", "*.key"],
  });
