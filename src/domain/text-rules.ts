import { z } from "zod";
import { DomainError } from "./errors.js";

// C0 controls (NUL to US), DEL and unpaired UTF-16 surrogates. PostgreSQL
// cannot store NUL in text nor a lone surrogate in jsonb, and no control
// character belongs in an id, a name, a query parameter or a header: they only
// hide, split or forge what logs and terminals show. (With the u flag a
// surrogate pair is one code point, so \p{Cs} matches only unpaired halves.)
const FORBIDDEN_CHARACTER = /[\u0000-\u001f\u007f]|\p{Cs}/u;
const REFUSAL = "control characters (U+0000 to U+001F, U+007F) and unpaired surrogates are not allowed";

export const hasForbiddenCharacter = (value: string): boolean => FORBIDDEN_CHARACTER.test(value);

/** The 400 for a forbidden character in `param`, worded as a schema's refusal is. */
export const forbiddenCharacterRefusal = (param: string) =>
  new DomainError("invalid_request_error", `Invalid '${param}': ${REFUSAL}.`, param);

/** `value` itself, or the 400 naming `param` when it holds a forbidden character. */
export function refuseForbiddenCharacters(param: string, value: string): string {
  if (hasForbiddenCharacter(value)) throw forbiddenCharacterRefusal(param);
  return value;
}

/** A string schema that refuses forbidden characters; the surface's parser names the field. */
export const textWithoutForbiddenCharacters = () =>
  z.string().refine((value) => !hasForbiddenCharacter(value), { error: `${REFUSAL}.` });

/** Where the first string holding a forbidden character sits in a parsed JSON value; null when none does. */
export function findForbiddenCharacter(value: unknown, path: PropertyKey[] = []): PropertyKey[] | null {
  if (typeof value === "string") return hasForbiddenCharacter(value) ? path : null;
  if (value === null || typeof value !== "object") return null;
  for (const [key, item] of Object.entries(value)) {
    const found = findForbiddenCharacter(item, [...path, Array.isArray(value) ? Number(key) : key]);
    if (found) return found;
  }
  return null;
}
