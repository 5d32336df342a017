import type { HttpBindings } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { createMiddleware } from "hono/factory";

export interface ClientAddressVariables {
  /** Who is calling, for per-client limits. */
  clientAddress: string;
}

/**
 * The socket's peer, or behind `trustedProxyHops` proxies the address the
 * outermost of them received from: each proxy appends its peer to
 * X-Forwarded-For, so that address is `trustedProxyHops` entries from the
 * end. Entries further left were written by the client, so never trusted.
 */
export const clientAddress = (trustedProxyHops: number) =>
  createMiddleware<{ Bindings: HttpBindings; Variables: ClientAddressVariables }>(async (c, next) => {
    const peer = getConnInfo(c).remote.address ?? "unknown";
    const forwarded = trustedProxyHops === 0 ? [] : (c.req.header("x-forwarded-for") ?? "").split(",").map((entry) => entry.trim()).filter(Boolean);
    c.set("clientAddress", [...forwarded.slice(-trustedProxyHops), peer][0]!);
    await next();
  });
