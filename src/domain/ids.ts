import { customAlphabet } from "nanoid";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Unbiased random base62 (nanoid rejects out-of-range bytes). */
export const randomBase62 = (length: number): string => customAlphabet(BASE62, length)();

// Public ids carry a kind prefix so a stray id in a log says what it is.
export const newId = {
  account: () => `acct_${randomBase62(20)}`,
  apiKey: () => `key_${randomBase62(20)}`,
  request: () => `req_${randomBase62(24)}`,
  hold: () => `hold_${randomBase62(20)}`,
  ledgerEntry: () => `le_${randomBase62(20)}`,
  endUser: () => `eu_${randomBase62(20)}`,
  conversation: () => `conv_${randomBase62(20)}`,
  file: () => `file-${randomBase62(24)}`,
  session: () => `sess_${randomBase62(20)}`,
  completion: () => `chatcmpl-${randomBase62(29)}`,
  rerank: () => `rerank-${randomBase62(29)}`,
  lease: () => `lease_${randomBase62(20)}`,
  auditEntry: () => `audit_${randomBase62(20)}`,
  topUp: () => `topup_${randomBase62(20)}`,
};
