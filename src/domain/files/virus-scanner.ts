import type { ByteSource } from "./byte-source.js";

export type ScanVerdict = { clean: true } | { clean: false; signature: string };

/**
 * An antivirus engine (SPEC 7: every upload is scanned; a hit is 422 av_hit).
 * When no verdict can be had, scan throws DomainError("service_unavailable")
 * so that the upload is refused rather than stored unscanned; errors of the
 * source itself, and the caller's own abort, are passed through unchanged.
 */
export interface VirusScanner {
  scan(source: ByteSource, signal?: AbortSignal): Promise<ScanVerdict>;
  /** Whether the engine answers, quickly (readiness checks, and whether to scan at all where that may be skipped); never throws. */
  ping(): Promise<boolean>;
}
