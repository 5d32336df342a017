import { getOperationAST } from "graphql";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { DashboardContext } from "./context.js";
import { CSRF_HEADER } from "./session-cookie.js";

/**
 * Mutations of a cookie session need the session's CSRF token in a header
 * (Bearer sessions need none). Queries do not: another site can make a browser
 * send one, but without CORS it cannot read the answer.
 */
export const csrfTokenRequired: Plugin<DashboardContext> = {
  onExecute({ args, setResultAndStopExecution }) {
    if ((args.contextValue as DashboardContext).proof !== "cookie-without-csrf") return;
    if (getOperationAST(args.document, args.operationName)?.operation !== "mutation") return;
    setResultAndStopExecution({
      errors: [
        createGraphQLError(
          `A mutation signed in by cookie needs the ${CSRF_HEADER} header: the csrfToken given at sign-in (also the csrfToken query).`,
          { extensions: { code: "csrf_token_invalid", http: { status: 403 } } },
        ),
      ],
    });
  },
};

const JSON_BODY = /^application\/json\b/i;

/**
 * A POST must be JSON. Form and text bodies are what another site can make a
 * browser send without asking (no CORS preflight), so refusing them means any
 * cross-site request that could change something is preflighted, and CORS
 * answers it only for DASHBOARD_ORIGINS. GET stays open for queries (graphql-yoga refuses mutations over GET).
 */
export function refusedContentType(request: Request): Response | null {
  if (request.method !== "POST" || JSON_BODY.test(request.headers.get("content-type") ?? "")) return null;
  const body = {
    errors: [{ message: "Send GraphQL requests as JSON: Content-Type: application/json.", extensions: { code: "invalid_request_error" } }],
  };
  return Response.json(body, { status: 415 });
}
