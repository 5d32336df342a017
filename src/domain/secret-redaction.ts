// What an audit row may keep of a value: everything but secrets. A full API key
// is shown once, at creation, and stored nowhere (SPEC 4); ops tokens and
// passwords never leave the config or the hash.

// By the end of the name: `opsToken`, `tokenHash`, `passwordHash`, but not `inputTokens`.
const SECRET_FIELD = /(password|passphrase|secret|token|authorization|hash)$/i;
// Anywhere in any string: a key pasted into a memo is as secret as one in a `key` field.
const API_KEY = /sk-[0-9A-Za-z]{32,}/g;

export const REDACTED = "[redacted]";

/** A key as the dashboard shows it (its stored display prefix and suffix), never the secret. */
const keyDisplay = (key: string) => `${key.slice(0, 7)}…${key.slice(-4)}`;

function redact(value: unknown): unknown {
  if (typeof value === "string") return value.replace(API_KEY, keyDisplay);
  if (Array.isArray(value)) return value.map(redact);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([field, v]) => [field, SECRET_FIELD.test(field) ? REDACTED : redact(v)]));
  }
  return value;
}

/**
 * `value` as JSON would carry it (dates as ISO strings, undefined fields
 * dropped), with secret fields replaced and API keys cut to their display form.
 */
export function redactSecrets(value: unknown): unknown {
  return value === undefined ? null : redact(JSON.parse(JSON.stringify(value)));
}
