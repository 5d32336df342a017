import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { graphql, type ResultOf } from "./api";

export const ACCOUNT_FIELDS = graphql(`
  fragment AccountFields on Account {
    id
    email
    displayName
    plan
    balanceCents
    heldCents
    availableCents
    limits {
      maxActiveKeys
      keyCreationsPerHour
      requestsPerMinute
      concurrentStreams
    }
  }
`);

export const ME_QUERY = graphql(
  `
    query Me {
      me {
        ...AccountFields
      }
      csrfToken
    }
  `,
  [ACCOUNT_FIELDS],
);

export type Account = ResultOf<typeof ACCOUNT_FIELDS>;

export interface SessionState {
  account: Account;
  /** Reads the account again (balance, limits) after something changed it. */
  refresh(): Promise<void>;
  signOut(): Promise<void>;
}

export const SessionContext = createContext<SessionState | null>(null);

/** The signed-in account; only pages under the signed-in layout call it. */
export function useSession(): SessionState {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}
