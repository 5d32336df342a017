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
export function clientAddressOf(peer: string | undefined, forwardedFor: string | undefined, trustedProxyHops: number): string {
  const forwarded = trustedProxyHops === 0 ? [] : (forwardedFor ?? "").split(",").map((entry) => entry.trim()).filter(Boolean);
  return [...forwarded.slice(-trustedProxyHops), peer ?? "unknown"][0]!;
}

export const clientAddress = (trustedProxyHops: number) =>
  createMiddleware<{ Bindings: HttpBindings; Variables: ClientAddressVariables }>(async (c, next) => {
    c.set("clientAddress", clientAddressOf(getConnInfo(c).remote.address, c.req.header("x-forwarded-for"), trustedProxyHops));
    await next();
  });
