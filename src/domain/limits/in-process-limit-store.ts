import type { LeaseRequest, LimitStore, WindowState } from "./limit-store.js";

/**
 * The embedded default's limit store: one process, so plain memory is exact.
 * Windows keep the times of counted requests (at most `limit` of them);
 * leases keep their expiry times.
 */
export function createInProcessLimitStore(): LimitStore {
  const windows = new Map<string, number[]>();
  const leases = new Map<string, Map<string, number>>();

  const liveLeases = (key: string, nowMs: number): Map<string, number> => {
    const held = leases.get(key) ?? new Map<string, number>();
    for (const [id, expiresAt] of held) if (expiresAt <= nowMs) held.delete(id);
    if (held.size === 0) leases.delete(key);
    return held;
  };

  return {
    async hitWindow(key, { limit, windowMs, nowMs }): Promise<WindowState> {
      const counted = (windows.get(key) ?? []).filter((at) => at > nowMs - windowMs);
      const allowed = counted.length < limit;
      if (allowed) counted.push(nowMs);
      if (counted.length > 0) windows.set(key, counted);
      else windows.delete(key);
      return {
        allowed,
        limit,
        remaining: Math.max(0, limit - counted.length),
        resetAtMs: (counted[0] ?? nowMs) + windowMs,
      };
    },

    async acquireLease(key, { leaseId, limit, ttlMs, nowMs }: LeaseRequest) {
      const held = liveLeases(key, nowMs);
      if (held.size >= limit && !held.has(leaseId)) return false;
      held.set(leaseId, nowMs + ttlMs);
      leases.set(key, held);
      return true;
    },

    async renewLease(key, { leaseId, ttlMs, nowMs }) {
      const held = liveLeases(key, nowMs);
      if (!held.has(leaseId)) return false;
      held.set(leaseId, nowMs + ttlMs);
      return true;
    },

    async releaseLease(key, leaseId) {
      const held = leases.get(key);
      held?.delete(leaseId);
      if (held?.size === 0) leases.delete(key);
    },
  };
}
