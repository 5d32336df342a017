import { initTRPC, TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/unstable-core-do-not-import";
import { isDomainError } from "../domain/errors.js";
import type { OpsContext } from "./context.js";

const codeByStatus: Record<number, TRPC_ERROR_CODE_KEY> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  402: "PAYMENT_REQUIRED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  422: "UNPROCESSABLE_CONTENT",
  429: "TOO_MANY_REQUESTS",
  502: "BAD_GATEWAY",
  503: "SERVICE_UNAVAILABLE",
};

const t = initTRPC.context<OpsContext>().create({
  errorFormatter: ({ shape, error }) => ({
    ...shape,
    // The SPEC 8 code, so scripts can branch on it as they would on REST.
    data: { ...shape.data, domainCode: isDomainError(error.cause) ? error.cause.code : null, stack: undefined },
  }),
});

/** The one place domain errors become tRPC errors; unknown errors stay INTERNAL_SERVER_ERROR. */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && isDomainError(result.error.cause)) {
    const cause = result.error.cause;
    throw new TRPCError({ code: codeByStatus[cause.status] ?? "INTERNAL_SERVER_ERROR", message: cause.message, cause });
  }
  return result;
});

const requireOpsToken = t.middleware(({ ctx, next }) => {
  if (!ctx.authorized) throw new TRPCError({ code: "UNAUTHORIZED", message: "A valid ops token is required." });
  return next();
});

export const router = t.router;
export const opsProcedure = t.procedure.use(mapDomainErrors).use(requireOpsToken);
