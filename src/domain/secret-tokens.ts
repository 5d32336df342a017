import { createHash } from "node:crypto";
import { randomBase62 } from "./ids.js";

// ~238 bits: unguessable, so a fast hash protects the stored copy (unlike a password, which needs argon2).
const RANDOM_LENGTH = 40;

/** A bearer secret shown once (`sess_…`, `claim_…`); only its hash is stored. */
export const newSecretToken = (prefix: string): string => `${prefix}_${randomBase62(RANDOM_LENGTH)}`;

export const hashSecretToken = (token: string): string => createHash("sha256").update(token).digest("hex");
