import { initTRPC, TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/unstable-core-do-not-import";
import { z } from "zod";
import { isDomainError } from "../domain/errors.js";
import { fieldNestedTooDeep, MAX_JSON_DEPTH, nestingRefusal } from "../domain/json-depth.js";
import { findForbiddenCharacter, forbiddenCharacterRefusal } from "../domain/text-rules.js";
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

const INTERNAL_MESSAGE = "The server had an error while processing your request.";

/** `limits.requestsPerMinute`, `allowedModels.0`: how ops scripts name a field of their input. */
const fieldName = (path: ReadonlyArray<PropertyKey>) => path.map(String).join(".");

/**
 * What a client may read of an error (SPEC 8: no SQL, stack or internal name):
 * deliberate errors as they are, an input's first problem naming its field,
 * anything unexpected as a generic message (the handler logs the original).
 */
function publicError(error: TRPCError): { message: string; param: string | null } {
  if (isDomainError(error.cause)) return { message: error.message, param: error.cause.param };
  // Only an input's schema: a failed output schema is the server's fault, and internal.
  if (error.code === "BAD_REQUEST" && error.cause instanceof z.ZodError) {
    const issue = error.cause.issues[0]!;
    const param = fieldName(issue.path) || null;
    return { message: param ? `Invalid '${param}': ${issue.message}` : issue.message, param };
  }
  if (error.code === "INTERNAL_SERVER_ERROR") return { message: INTERNAL_MESSAGE, param: null };
  return { message: error.message, param: null };
}

const t = initTRPC.context<OpsContext>().create({
  errorFormatter: ({ shape, error }) => {
    const { message, param } = publicError(error);
    return {
      ...shape,
      message,
      // The SPEC 8 code and param, so scripts can branch on them as they would on REST.
      data: { ...shape.data, domainCode: isDomainError(error.cause) ? error.cause.code : null, param, stack: undefined },
    };
  },
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
  if (ctx.actor === null) throw new TRPCError({ code: "UNAUTHORIZED", message: "A valid ops token is required." });
  return next({ ctx: { actor: ctx.actor } });
});

// Every string of every input, before its schema (see text-rules): what PostgreSQL
// cannot store fails as a 400 naming the field, not as a 500 from the query.
const refuseForbiddenCharactersInInput = t.middleware(async ({ getRawInput, next }) => {
  const input = await getRawInput();
  // Depth first: the character walk below recurses, and nothing should walk 5,000 levels.
  const tooDeep = fieldNestedTooDeep(input, MAX_JSON_DEPTH);
  if (tooDeep !== null) throw nestingRefusal(tooDeep);
  const path = findForbiddenCharacter(input);
  if (path) throw forbiddenCharacterRefusal(fieldName(path) || "input");
  return next();
});

export const router = t.router;
export const opsProcedure = t.procedure.use(mapDomainErrors).use(requireOpsToken).use(refuseForbiddenCharactersInInput);

/**
 * SPEC 12: a mutation runs in one transaction with its audit row (actor,
 * procedure, input and result, secrets redacted). Its handler passes
 * `ctx.scope` to the domain verb, so the change commits with the row or not
 * at all. A mutation that fails rolls back and leaves no row (audit.ts says why).
 */
export const opsMutation = opsProcedure.use(async ({ ctx, path, getRawInput, next }) => {
  const call = { actor: ctx.actor, procedure: path, input: await getRawInput() };
  return ctx.services.audit.record(
    call,
    async (scope) => {
      const result = await next({ ctx: { scope } });
      // Thrown, not returned, so the transaction rolls back; the error reaches the client as it would have.
      if (!result.ok) throw result.error;
      return result;
    },
    (result) => result.data,
  );
});
