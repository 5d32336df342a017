import { afterAll, beforeAll } from "vitest";
import { startTestPlatform, type TestPlatform } from "./platform.js";

export interface GraphQLAnswer<T = Record<string, any>> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

let owners = 0;

/** The dashboard API over real HTTP, as a browser signed in with `token` calls it. */
export function dashboard(t: TestPlatform) {
  /** The whole HTTP answer, for its headers. */
  async function post<T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}, token?: string) {
    const res = await fetch(`${t.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, headers: res.headers, answer: (await res.json()) as GraphQLAnswer<T> };
  }

  const graphql = async <T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}, token?: string) =>
    (await post<T>(query, variables, token)).answer;

  const signIn = async (email: string, password: string) =>
    graphql(`mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { token expiresAt account { id email } } }`, {
      email,
      password,
    });

  return {
    graphql,
    post,
    signIn,
    /** A new account owner, signed up and signed in. */
    async owner(password = "correct horse battery") {
      const email = `owner-${process.pid}-${++owners}-${Date.now()}@example.com`;
      const signedUp = await graphql(`mutation ($email: String!, $password: String!) { signUp(email: $email, password: $password) { id } }`, { email, password });
      const accountId = signedUp.data!.signUp.id as string;
      const token = (await signIn(email, password)).data!.signIn.token as string;
      return { email, password, accountId, token };
    },
  };
}

export const errorCode = (answer: GraphQLAnswer) => answer.errors?.[0]?.extensions?.code;

/** For a test file: a platform of its own and its dashboard API, started before the tests and closed after. */
export function dashboardPlatform() {
  const started = {} as { t: TestPlatform; api: ReturnType<typeof dashboard> };
  beforeAll(async () => {
    started.t = await startTestPlatform();
    started.api = dashboard(started.t);
  });
  afterAll(() => started.t?.close());
  return started;
}
