import type { ByteSource } from "./byte-source.js";

export type ScanVerdict = { clean: true } | { clean: false; signature: string };

/**
 * An antivirus engine (SPEC 7: every upload is scanned; a hit is 422 av_hit).
 * When no verdict can be had, scan throws DomainError("service_unavailable")
 * so that an unscanned file is never stored; errors of the source itself, and
 * the caller's own abort, are passed through unchanged.
 */
export interface VirusScanner {
  scan(source: ByteSource, signal?: AbortSignal): Promise<ScanVerdict>;
  /** Whether the engine answers (readiness checks); never throws. */
  ping(): Promise<boolean>;
}
