import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitStore } from "../../src/domain/limits/limit-store.js";

// One contract for every LimitStore adapter (SPEC 6): a sliding 60-second
// window per key, and leases that lapse on their own. Time is passed in, so
// the suite moves it explicitly and never sleeps.

export interface LimitStoreUnderTest {
  store: LimitStore;
  close(): Promise<void>;
}

const MINUTE = 60_000;
const T0 = Date.parse("2026-06-01T12:00:00Z");

export function describeLimitStoreContract(name: string, makeStore: () => Promise<LimitStoreUnderTest>) {
  describe(`${name}: the LimitStore contract`, () => {
    let subject: LimitStoreUnderTest;
    beforeAll(async () => {
      subject = await makeStore();
    });
    afterAll(() => subject?.close());

    // Keys never repeat, so no test sees another's counters (Redis outlives the test run).
    const key = () => `contract:${randomUUID()}`;
    const hit = (k: string, nowMs: number, limit = 3) => subject.store.hitWindow(k, { limit, windowMs: MINUTE, nowMs });
    const acquire = (k: string, leaseId: string, nowMs: number, limit = 2, ttlMs = 10_000) =>
      subject.store.acquireLease(k, { leaseId, limit, ttlMs, nowMs });
    const renew = (k: string, leaseId: string, nowMs: number, ttlMs = 1_000) => subject.store.renewLease(k, { leaseId, ttlMs, nowMs });

    describe("sliding window", () => {
      it("allows the limit, counts down, then refuses without counting the refusal", async () => {
        const k = key();
        expect(await hit(k, T0)).toEqual({ allowed: true, limit: 3, remaining: 2, resetAtMs: T0 + MINUTE });
        expect(await hit(k, T0 + 1)).toEqual({ allowed: true, limit: 3, remaining: 1, resetAtMs: T0 + MINUTE });
        expect(await hit(k, T0 + 2)).toEqual({ allowed: true, limit: 3, remaining: 0, resetAtMs: T0 + MINUTE });
        expect(await hit(k, T0 + 3)).toEqual({ allowed: false, limit: 3, remaining: 0, resetAtMs: T0 + MINUTE });
        expect(await hit(k, T0 + 4)).toMatchObject({ allowed: false });
        // Refusals were not counted: the first request leaving frees exactly one, and the reset moves to the next oldest.
        expect(await hit(k, T0 + MINUTE)).toEqual({ allowed: true, limit: 3, remaining: 0, resetAtMs: T0 + 1 + MINUTE });
        expect(await hit(k, T0 + MINUTE)).toMatchObject({ allowed: false });
      });

      it("slides request by request instead of resetting in fixed buckets", async () => {
        const k = key();
        for (const at of [0, 20_000, 40_000]) expect((await hit(k, T0 + at)).allowed).toBe(true);
        expect(await hit(k, T0 + 59_999)).toMatchObject({ allowed: false, resetAtMs: T0 + MINUTE });
        expect(await hit(k, T0 + 60_000)).toMatchObject({ allowed: true, resetAtMs: T0 + 80_000 });
        expect(await hit(k, T0 + 60_001)).toMatchObject({ allowed: false, resetAtMs: T0 + 80_000 });
        expect(await hit(k, T0 + 79_999)).toMatchObject({ allowed: false });
        expect(await hit(k, T0 + 80_000)).toMatchObject({ allowed: true, resetAtMs: T0 + 100_000 });
      });

      it("counts two requests in the same millisecond as two", async () => {
        const k = key();
        const both = await Promise.all([hit(k, T0, 2), hit(k, T0, 2)]);
        expect(both.map((r) => r.allowed)).toEqual([true, true]);
        expect(await hit(k, T0, 2)).toMatchObject({ allowed: false, remaining: 0 });
      });

      it("keeps keys apart", async () => {
        const [a, b] = [key(), key()];
        await hit(a, T0, 1);
        expect(await hit(a, T0, 1)).toMatchObject({ allowed: false });
        expect(await hit(b, T0, 1)).toMatchObject({ allowed: true, remaining: 0 });
      });

      it("refuses at once when the limit is lowered below what was already counted", async () => {
        const k = key();
        for (let i = 0; i < 3; i++) await hit(k, T0 + i, 10);
        expect(await hit(k, T0 + 10, 2)).toEqual({ allowed: false, limit: 2, remaining: 0, resetAtMs: T0 + MINUTE });
      });

      it("allows exactly the limit out of 200 concurrent hits", async () => {
        const k = key();
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => hit(k, T0 + (i % 7), 60)));
        expect(results.filter((r) => r.allowed)).toHaveLength(60);
        expect(await hit(k, T0 + 10, 60)).toMatchObject({ allowed: false, remaining: 0 });
      });
    });

    describe("leases", () => {
      it("grants up to the limit, refuses the next, frees one on release, and releasing again changes nothing", async () => {
        const k = key();
        expect(await acquire(k, "a", T0)).toBe(true);
        expect(await acquire(k, "b", T0)).toBe(true);
        expect(await acquire(k, "c", T0)).toBe(false);
        await subject.store.releaseLease(k, "a");
        expect(await acquire(k, "c", T0 + 1)).toBe(true);
        await subject.store.releaseLease(k, "a");
        await subject.store.releaseLease(k, "never-held");
        await subject.store.releaseLease(key(), "a");
        expect(await acquire(k, "d", T0 + 2)).toBe(false);
      });

      it("counts the same lease id once", async () => {
        const k = key();
        expect(await acquire(k, "a", T0, 1)).toBe(true);
        expect(await acquire(k, "a", T0 + 1, 1)).toBe(true);
        expect(await acquire(k, "b", T0 + 2, 1)).toBe(false);
      });

      it("lets a lease that is not renewed lapse after its TTL, and renewing keeps it", async () => {
        const k = key();
        await acquire(k, "kept", T0, 2, 1_000);
        await acquire(k, "dropped", T0, 2, 1_000);
        expect(await renew(k, "kept", T0 + 900)).toBe(true);
        expect(await acquire(k, "new", T0 + 999, 2, 1_000)).toBe(false);
        // "dropped" lapsed at T0 + 1000; "kept" now runs to T0 + 1900.
        expect(await acquire(k, "new", T0 + 1_000, 2, 1_000)).toBe(true);
        expect(await renew(k, "dropped", T0 + 1_001)).toBe(false);
        expect(await renew(k, "never-held", T0 + 1_001)).toBe(false);
        expect(await acquire(k, "other", T0 + 1_899, 2, 1_000)).toBe(false);
        expect(await acquire(k, "other", T0 + 1_900, 2, 1_000)).toBe(true);
      });

      it("times each lease by its own TTL: a short one taken later does not cut a long one short", async () => {
        const k = key();
        await acquire(k, "long", T0, 2, 10_000);
        await acquire(k, "short", T0 + 1, 2, 1_000);
        expect(await acquire(k, "next", T0 + 1_001, 2, 1_000)).toBe(true);
        expect(await renew(k, "long", T0 + 9_999)).toBe(true);
      });

      it("grants exactly the limit out of 20 concurrent acquisitions", async () => {
        const k = key();
        const granted = await Promise.all(Array.from({ length: 20 }, (_, i) => acquire(k, `l${i}`, T0, 5)));
        expect(granted.filter(Boolean)).toHaveLength(5);
      });
    });
  });
}
