/**
 * Where limit counters live: in Redis when instances share limits, in memory
 * for the embedded default. Callers pass the time, so every adapter follows
 * the injected clock and one contract suite can move it.
 */
export interface LimitStore {
  /**
   * Counts one request against a sliding window of `windowMs`, unless `limit`
   * requests were already counted within it (then nothing is counted).
   */
  hitWindow(key: string, window: { limit: number; windowMs: number; nowMs: number }): Promise<WindowState>;

  /** Takes one of `limit` leases; a lease not renewed within `ttlMs` lapses on its own. */
  acquireLease(key: string, lease: LeaseRequest): Promise<boolean>;

  /** Extends a held lease; false when it had already lapsed. */
  renewLease(key: string, lease: Omit<LeaseRequest, "limit">): Promise<boolean>;

  releaseLease(key: string, leaseId: string): Promise<void>;
}

export interface LeaseRequest {
  leaseId: string;
  limit: number;
  ttlMs: number;
  nowMs: number;
}

export interface WindowState {
  allowed: boolean;
  limit: number;
  /** Requests still allowed in the window after this one. */
  remaining: number;
  /** When the oldest counted request leaves the window, freeing one request (ms since the epoch). */
  resetAtMs: number;
}

/** The store could not be reached; what happens then is the limits' failure policy. */
export class LimitStoreUnavailableError extends Error {
  override readonly name = "LimitStoreUnavailableError";
}
