import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// The running server's address, kept beside its generated ops token: the ops
// CLI on the same machine then reaches a server started on any port.
const FILE = "server-url";

export function writeServerUrl(dataDir: string, url: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, FILE), `${url}\n`);
}

/** Removed on a clean shutdown, so the CLI does not chase a server that is gone. */
export function removeServerUrl(dataDir: string): void {
  rmSync(join(dataDir, FILE), { force: true });
}

export function readServerUrl(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, FILE), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
