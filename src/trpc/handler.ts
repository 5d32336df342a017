import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import type { Logger } from "../domain/logger.js";
import { isOpsToken, type OpsServices } from "./context.js";
import { opsRouter } from "./router.js";

export const OPS_ENDPOINT = "/trpc";

/** The ops API as a fetch handler, to be mounted at /trpc. */
export function createOpsHandler({ services, opsToken, logger }: { services: OpsServices; opsToken: string; logger: Logger }) {
  return (request: Request) =>
    fetchRequestHandler({
      endpoint: OPS_ENDPOINT,
      req: request,
      router: opsRouter,
      createContext: () => ({ services, authorized: isOpsToken(request.headers.get("authorization"), opsToken) }),
      onError: ({ error, path }) => {
        if (error.code === "INTERNAL_SERVER_ERROR") logger.error({ err: error.cause ?? error, path }, "ops procedure failed");
      },
    });
}
