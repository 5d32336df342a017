// The dashboard API client: every call is a typed gql.tada document, sent as JSON to /graphql with the session cookie.
import { print } from "@0no-co/graphql.web";
import { initGraphQLTada, type ResultOf, type TadaDocumentNode } from "gql.tada";
import type { introspection } from "./graphql-env";

export type { ResultOf };

/** Queries typed by the schema in graphql-env.d.ts (npm run web:schema); fragments unmasked, as plain data. */
export const graphql = initGraphQLTada<{ introspection: introspection; disableMasking: true }>();

/** An error the API answered, in its SPEC 8 shape: a message meant for people and a stable code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** Seconds to wait, on a rate limit. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

interface GraphQLAnswer {
  data?: unknown;
  errors?: { message: string; extensions?: { code?: string; retryAfter?: number } }[];
}

// The page's copy of the session's CSRF token: given at sign-in, or asked for after a reload.
let csrfToken: string | null = null;
export const setCsrfToken = (token: string | null) => {
  csrfToken = token;
};

// Told when the API says the session is gone, so the app shows the sign-in form.
let onSignedOut: () => void = () => {};
export const whenSignedOut = (listener: () => void) => {
  onSignedOut = listener;
};

const CSRF_QUERY = graphql(`
  query CsrfToken {
    csrfToken
  }
`);

async function send<Result>(document: TadaDocumentNode<Result, any>, variables: unknown): Promise<Result> {
  const isMutation = document.definitions.some((definition) => definition.kind === "OperationDefinition" && definition.operation === "mutation");
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (isMutation && csrfToken) headers["x-csrf-token"] = csrfToken;
  let response: Response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      credentials: "same-origin",
      headers,
      body: JSON.stringify({ query: print(document), variables }),
    });
  } catch {
    throw new ApiError("The server could not be reached. Check your connection and try again.", "network_error");
  }
  let answer: GraphQLAnswer;
  try {
    answer = (await response.json()) as GraphQLAnswer;
  } catch {
    throw new ApiError(`The server answered ${response.status} without a readable body. Try again in a moment.`, "server_error");
  }
  const [error] = answer.errors ?? [];
  if (error) {
    const code = error.extensions?.code ?? "server_error";
    throw new ApiError(error.message, code, error.extensions?.retryAfter ?? null);
  }
  if (!response.ok || answer.data === undefined || answer.data === null) {
    throw new ApiError(`The server answered ${response.status}. Try again in a moment.`, "server_error");
  }
  return answer.data as Result;
}

/** Runs one query or mutation; a lost session signs the page out, a missing CSRF token is fetched once and the call retried. */
export async function request<Result, Variables>(
  document: TadaDocumentNode<Result, Variables>,
  ...[variables]: Variables extends Record<string, never> ? [] : [Variables]
): Promise<Result> {
  try {
    return await send(document, variables ?? {});
  } catch (error) {
    if (error instanceof ApiError && error.code === "csrf_token_invalid") {
      setCsrfToken((await send(CSRF_QUERY, {})).csrfToken);
      return send(document, variables ?? {});
    }
    if (error instanceof ApiError && error.code === "unauthorized") onSignedOut();
    throw error;
  }
}

/** An error as the page shows it: the API's own words, or a plain sentence for anything else. */
export const messageOf = (error: unknown): string =>
  error instanceof ApiError ? error.message : error instanceof Error ? error.message : "Something went wrong. Try again.";
