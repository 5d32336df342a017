import { and, eq, gt, inArray, isNotNull, isNull, lte, ne, or } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { newId } from "./ids.js";
import { dashboardSessions } from "./schema/index.js";
import { hashSecretToken as hashToken, newSecretToken } from "./secret-tokens.js";

const SESSION_TTL_MS = 30 * 24 * 3_600_000;
// Small deletes keep each transaction short; a backlog drains within one run.
const CLEANUP_BATCH = 1_000;

export interface DashboardSession {
  id: string;
  accountId: string;
}

/** Dashboard sign-in sessions (SPEC 11): the token goes to the browser once, the database keeps its hash. */
export function createSessions({ db, clock }: { db: Db; clock: Clock }) {
  const live = () => and(isNull(dashboardSessions.revokedAt), gt(dashboardSessions.expiresAt, clock.now()));

  return {
    async start(accountId: string): Promise<{ token: string; expiresAt: Date }> {
      const token = newSecretToken("sess");
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + SESSION_TTL_MS);
      await db.insert(dashboardSessions).values({ id: newId.session(), accountId, tokenHash: hashToken(token), createdAt: now, expiresAt });
      return { token, expiresAt };
    },

    /** The live session this token opened; null when unknown, expired or ended. */
    async find(token: string): Promise<DashboardSession | null> {
      const [session] = await db
        .select({ id: dashboardSessions.id, accountId: dashboardSessions.accountId })
        .from(dashboardSessions)
        .where(and(eq(dashboardSessions.tokenHash, hashToken(token)), live()));
      return session ?? null;
    },

    async end(sessionId: string): Promise<void> {
      await db.update(dashboardSessions).set({ revokedAt: clock.now() }).where(and(eq(dashboardSessions.id, sessionId), live()));
    },

    /** Deletes up to a batch of ended sessions (expired or signed out): they can open nothing. Returns how many. */
    async deleteEnded(): Promise<number> {
      const ended = db
        .select({ id: dashboardSessions.id })
        .from(dashboardSessions)
        .where(or(lte(dashboardSessions.expiresAt, clock.now()), isNotNull(dashboardSessions.revokedAt)))
        .limit(CLEANUP_BATCH);
      const deleted = await db.delete(dashboardSessions).where(inArray(dashboardSessions.id, ended)).returning({ id: dashboardSessions.id });
      return deleted.length;
    },

    /** Ends every live session of the account, except the one asked to keep. */
    async endAll(accountId: string, keepSessionId?: string): Promise<void> {
      const others = keepSessionId === undefined ? undefined : ne(dashboardSessions.id, keepSessionId);
      await db
        .update(dashboardSessions)
        .set({ revokedAt: clock.now() })
        .where(and(eq(dashboardSessions.accountId, accountId), others, live()));
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
