import { hash, verify } from "@node-rs/argon2";
import { z } from "zod";

/** Long enough to resist guessing, short enough that hashing one stays cheap. */
export const passwordInput = z.string().min(10, { error: "password must be at least 10 characters." }).max(256, { error: "password must be at most 256 characters." });

// The library's default algorithm is argon2id; OWASP's minimum parameters (19 MiB, 2 passes): memory-hard, as SPEC 11 asks.
const ARGON2ID = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const hashPassword = (password: string): Promise<string> => hash(password, ARGON2ID);

// Checked when the email is unknown, so that answer takes as long as a wrong password.
const dummyHash = hashPassword("no account has this password");

/** Whether the password matches; with no stored hash it still spends the time of a check, and fails. */
export async function passwordMatches(storedHash: string | null, password: string): Promise<boolean> {
  if (storedHash === null) {
    await verify(await dummyHash, password);
    return false;
  }
  return verify(storedHash, password);
}
