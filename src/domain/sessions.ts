import { createHash } from "node:crypto";
import { and, eq, gt, isNull, ne } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { newId, randomBase62 } from "./ids.js";
import { dashboardSessions } from "./schema/index.js";

const SESSION_TTL_MS = 30 * 24 * 3_600_000;
// ~238 bits: unguessable, so a fast hash protects the stored copy.
const TOKEN_RANDOM_LENGTH = 40;

const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");

export interface DashboardSession {
  id: string;
  accountId: string;
}

/** Dashboard sign-in sessions (SPEC 11): the token goes to the browser once, the database keeps its hash. */
export function createSessions({ db, clock }: { db: Db; clock: Clock }) {
  const live = () => and(isNull(dashboardSessions.revokedAt), gt(dashboardSessions.expiresAt, clock.now()));

  return {
    async start(accountId: string): Promise<{ token: string; expiresAt: Date }> {
      const token = `sess_${randomBase62(TOKEN_RANDOM_LENGTH)}`;
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
