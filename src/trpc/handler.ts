import { TRPCError } from "@trpc/server";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { RetryLaterError } from "../domain/errors.js";
import type { AuthFailureLimits } from "../domain/limits/auth-failure-limits.js";
import type { Logger } from "../domain/logger.js";
import { isOpsToken, type OpsServices } from "./context.js";
import { opsRouter } from "./router.js";

export const OPS_ENDPOINT = "/trpc";

export interface OpsHandlerDeps {
  services: OpsServices;
  opsToken: string;
  logger: Logger;
  authFailures: AuthFailureLimits;
}

/** The ops API as a fetch handler, to be mounted at /trpc. */
export function createOpsHandler({ services, opsToken, logger, authFailures }: OpsHandlerDeps) {
  /** Whether the caller holds the ops token; an address that keeps presenting wrong ones is refused (429) first. */
  async function authorize(request: Request, clientAddress: string): Promise<boolean> {
    try {
      authFailures.refuseIfOverLimit(clientAddress);
      const authorized = isOpsToken(request.headers.get("authorization"), opsToken);
      if (!authorized) await authFailures.countFailure(clientAddress);
      return authorized;
    } catch (error) {
      if (!(error instanceof RetryLaterError)) throw error;
      throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: error.message, cause: error });
    }
  }

  return (request: Request, clientAddress: string) =>
    fetchRequestHandler({
      endpoint: OPS_ENDPOINT,
      req: request,
      router: opsRouter,
      createContext: async () => ({ services, authorized: await authorize(request, clientAddress) }),
      responseMeta: ({ errors }) => {
        const wait = errors.map((error) => error.cause).find((cause) => cause instanceof RetryLaterError);
        // As on REST (SPEC 6): whole seconds, at least 1.
        return wait ? { headers: new Headers({ "Retry-After": String(Math.max(1, Math.ceil(wait.retryAfterMs / 1_000))) }) } : {};
      },
      onError: ({ error, path }) => {
        if (error.code === "INTERNAL_SERVER_ERROR") logger.error({ err: error.cause ?? error, path }, "ops procedure failed");
      },
    });
}
