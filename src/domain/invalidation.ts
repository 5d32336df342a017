/** A change that makes cached copies of keys or accounts stale. */
export type Invalidation =
  | { kind: "key"; keyId: string }
  | { kind: "account"; accountId: string }
  /** Events may have been missed (a subscription dropped): drop every cached copy. */
  | { kind: "everything" };

/**
 * Carries invalidations to every instance's caches: through Redis pub/sub when
 * instances share a database, in memory for the embedded default.
 */
export interface InvalidationBus {
  /** Delivers to this instance's listeners at once, then to every other instance. */
  publish(event: Invalidation): Promise<void>;
  subscribe(listener: (event: Invalidation) => void): void;
  /** False while events from other instances may be missed; caches must not be trusted then. */
  isLive(): boolean;
}

/** One process: delivery is a function call, so nothing is ever missed. */
export function createInProcessInvalidationBus(): InvalidationBus {
  const listeners: Array<(event: Invalidation) => void> = [];
  return {
    async publish(event) {
      for (const listener of listeners) listener(event);
    },
    subscribe: (listener) => void listeners.push(listener),
    isLive: () => true,
  };
}
