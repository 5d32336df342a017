import type { ApiCaller } from "../auth.js";
import { DomainError, isDomainError } from "../errors.js";
import { matches } from "../caller-cache.js";
import type { InvalidationBus } from "../invalidation.js";

// SPEC 4: a revoked key stops working on every instance within a second, and
// a suspended account's keys stop too; for a realtime session that means its
// socket closes. Rather than re-check every session every second, the watch
// listens to the invalidation bus that already clears the key caches on every
// instance, and re-checks only the sessions an event concerns. While the bus
// may be missing events (its subscription is down) it falls back to
// re-checking every session once a second.

const RECHECK_WHILE_BUS_DOWN_MS = 1_000;
/** What ends a session; any other failure of a re-check (a lost connection) leaves it running. */
const LOST_ACCESS = new Set(["invalid_api_key", "account_suspended"]);

interface Watched {
  caller: ApiCaller;
  recheck(): Promise<unknown>;
  onLost(reason: DomainError): void;
  checking: boolean;
  /** An event arrived during a check, which may have read the state before it: check once more. */
  again: boolean;
  lost: boolean;
}

export function createCallerWatch({ bus, everyMsWhileBusDown = RECHECK_WHILE_BUS_DOWN_MS }: { bus: InvalidationBus; everyMsWhileBusDown?: number }) {
  const watched = new Set<Watched>();

  async function check(entry: Watched): Promise<void> {
    if (entry.lost) return;
    if (entry.checking) return void (entry.again = true);
    entry.checking = true;
    entry.again = false;
    try {
      await entry.recheck();
    } catch (error) {
      if (isDomainError(error) && LOST_ACCESS.has(error.code) && watched.has(entry)) {
        entry.lost = true;
        watched.delete(entry);
        entry.onLost(error);
      }
    } finally {
      entry.checking = false;
    }
    if (entry.again) await check(entry);
  }

  bus.subscribe((event) => {
    for (const entry of watched) if (matches(event, entry.caller)) void check(entry);
  });
  const fallback = setInterval(() => {
    if (bus.isLive()) return;
    for (const entry of watched) void check(entry);
  }, everyMsWhileBusDown);
  fallback.unref();

  return {
    /** Watches one session's caller until the returned function is called. */
    watch(caller: ApiCaller, recheck: () => Promise<unknown>, onLost: (reason: DomainError) => void): () => void {
      const entry: Watched = { caller, recheck, onLost, checking: false, again: false, lost: false };
      watched.add(entry);
      return () => void watched.delete(entry);
    },
    stop(): void {
      clearInterval(fallback);
      watched.clear();
    },
  };
}

export type CallerWatch = ReturnType<typeof createCallerWatch>;
