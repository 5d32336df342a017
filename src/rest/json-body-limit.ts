import type { IncomingMessage } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { createMiddleware } from "hono/factory";
import getRawBody from "raw-body";
import { DomainError } from "../domain/errors.js";

/**
 * Reads a JSON request's body whole, refusing more than `maxBytes`: at once
 * when Content-Length says so, else as soon as the bytes read pass it. The
 * body is read straight from Node's request and handed to the Node adapter as
 * `rawBody`, which `c.req.text()` then returns without building a WHATWG
 * Request and stream around it (hono/body-limit does, on every request).
 */
export function jsonBodyLimit(maxBytes: number) {
  const tooLarge = () => new DomainError("request_too_large", `Request bodies may be at most ${maxBytes} bytes.`);
  return createMiddleware<{ Bindings: HttpBindings }>(async (c, next) => {
    const incoming: IncomingMessage & { rawBody?: Buffer } = c.env.incoming;
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
    try {
      incoming.rawBody = await getRawBody(incoming, { limit: maxBytes, length: declared });
    } catch (error) {
      const type = (error as { type?: string }).type;
      if (type === "entity.too.large") throw tooLarge();
      if (type === "request.size.invalid") {
        throw new DomainError("invalid_request_error", "The request body is shorter or longer than its Content-Length.");
      }
      throw error;
    }
    await next();
  });
}
