import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Invalidation, InvalidationBus } from "../domain/invalidation.js";
import type { Logger } from "../domain/logger.js";

interface Envelope {
  origin: string;
  event: Invalidation;
}

/**
 * Invalidations over Redis pub/sub. Pub/sub delivers only to connected
 * subscribers, so while the subscription is down the bus reports itself not
 * live (caches step aside), and once it is back every cache is flushed: what
 * was missed is unknowable.
 */
export function createRedisInvalidationBus({
  publisher,
  subscriber,
  channel,
  logger,
}: {
  publisher: Redis;
  subscriber: Redis;
  channel: string;
  logger: Logger;
}): InvalidationBus {
  const origin = randomUUID();
  const listeners: Array<(event: Invalidation) => void> = [];
  let live = false;
  const deliver = (event: Invalidation) => {
    for (const listener of listeners) listener(event);
  };

  async function subscribe(): Promise<void> {
    try {
      await subscriber.subscribe(channel);
      live = true;
      deliver({ kind: "everything" });
    } catch (error) {
      logger.warn({ err: error }, "could not subscribe to cache invalidations; caches stay bypassed");
    }
  }

  subscriber.on("message", (from: string, message: string) => {
    if (from !== channel) return;
    try {
      const envelope = JSON.parse(message) as Envelope;
      if (envelope.origin !== origin) deliver(envelope.event);
    } catch (error) {
      logger.warn({ err: error }, "ignored a malformed cache invalidation");
    }
  });
  subscriber.on("close", () => void (live = false));
  subscriber.on("ready", () => void subscribe());
  if (subscriber.status === "ready") void subscribe();

  return {
    async publish(event) {
      deliver(event);
      const envelope: Envelope = { origin, event };
      try {
        await publisher.publish(channel, JSON.stringify(envelope));
      } catch (error) {
        // Other instances' caches then hold the old copy until their TTL runs out.
        logger.error({ err: error, event }, "could not broadcast a cache invalidation");
      }
    },
    subscribe: (listener) => void listeners.push(listener),
    isLive: () => live,
  };
}
