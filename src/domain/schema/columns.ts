import { bigint, timestamp } from "drizzle-orm/pg-core";

// Money is integer cents. bigint in the database, a JS number in code: cents stay
// far below 2^53, and "number" mode keeps arithmetic exact without BigInt plumbing.
export const cents = (name: string) => bigint(name, { mode: "number" });

export const tokens = (name: string) => bigint(name, { mode: "number" });

export const timestampTz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
