import { TRPCError } from "@trpc/server";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { RetryLaterError } from "../domain/errors.js";
import type { AuthFailureLimits } from "../domain/limits/auth-failure-limits.js";
import type { Logger } from "../domain/logger.js";
import type { NamedOpsToken } from "../infra/ops-token.js";
import { type OpsServices, opsTokenHolder } from "./context.js";
import { opsRouter } from "./router.js";

export const OPS_ENDPOINT = "/trpc";

export interface OpsHandlerDeps {
  services: OpsServices;
  opsTokens: NamedOpsToken[];
  logger: Logger;
  authFailures: AuthFailureLimits;
}

/** The ops API as a fetch handler, to be mounted at /trpc. */
export function createOpsHandler({ services, opsTokens, logger, authFailures }: OpsHandlerDeps) {
  /** The name of the ops token the caller holds, or null; an address that keeps presenting wrong ones is refused (429) first. */
  async function authorize(request: Request, clientAddress: string): Promise<string | null> {
    try {
      authFailures.refuseIfOverLimit(clientAddress);
      const actor = opsTokenHolder(request.headers.get("authorization"), opsTokens);
      if (actor === null) await authFailures.countFailure(clientAddress);
      return actor;
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
      createContext: async () => ({ services, actor: await authorize(request, clientAddress) }),
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
