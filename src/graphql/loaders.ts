import DataLoader from "dataloader";
import type { IdentityDirectory } from "../domain/identity-directory.js";
import type { RequestHistory } from "../domain/request-history.js";
import type { EndUser, RequestRecord } from "../domain/schema/index.js";
import type { DashboardSession } from "../domain/sessions.js";

/** What a row of a list points to, loaded for the whole list at once. */
export interface DashboardLoaders {
  endUsers: DataLoader<string, EndUser | null>;
  requests: DataLoader<string, RequestRecord | null>;
}

export interface LoaderSources {
  identities: IdentityDirectory;
  requests: RequestHistory;
}

/** DataLoader wants one answer per id, in the ids' order: null where the account has no such row. */
async function inIdOrder<Row extends { id: string }>(ids: readonly string[], rows: Promise<Row[]>): Promise<Array<Row | null>> {
  const byId = new Map((await rows).map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

/**
 * One set per GraphQL request, so a list's rows cost one query per field they
 * point through, however many rows there are. Every batch reads only the
 * session's account: no id, whoever's it is, loads another account's row.
 * Without a session nothing loads (the fields above have refused already).
 */
export function createDashboardLoaders({ identities, requests }: LoaderSources, session: DashboardSession | null): DashboardLoaders {
  const ofAccount = <Row extends { id: string }>(getMany: (accountId: string, ids: readonly string[]) => Promise<Row[]>) =>
    new DataLoader<string, Row | null>(async (ids) => (session ? inIdOrder(ids, getMany(session.accountId, ids)) : ids.map(() => null)));
  return {
    endUsers: ofAccount((accountId, ids) => identities.endUsers.getMany(accountId, ids)),
    requests: ofAccount((accountId, ids) => requests.getMany(accountId, ids)),
  };
}
