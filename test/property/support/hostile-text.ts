import fc from "fast-check";

// Strings an attacker or a broken client sends: control characters, lone
// surrogates, quotes and escapes, and long runs of one character (what
// tokenizers, regexes and parsers quadratic in a run choke on).

/** Any UTF-16 code unit, C0 controls and unpaired surrogates included. */
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

const TROUBLESOME = [
  "\u0000", "\u0007", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u2028", "\u202e", "\ufeff", "\ufffd",
  "\ud800", "\udfff", "\ud83d\ude00", "\u0301", "é", "%", "%00", "%zz", "'", '"', "\\", "/", "..", "<", "{", "a",
];
const troublesomeText = fc.string({ unit: fc.constantFrom(...TROUBLESOME), maxLength: 40 });

const RUN_UNITS = ["a", "x", "0", " ", "=", "é", "😀", "\u0000", "\n", "\ud800", "%"];

/** One character repeated up to about `maxBytes` UTF-8 bytes (shrinks towards shorter runs). */
export const longRun = (maxBytes: number) =>
  fc
    .record({ unit: fc.constantFrom(...RUN_UNITS), bytes: fc.integer({ min: Math.min(1_000, maxBytes), max: maxBytes }) })
    .map(({ unit, bytes }) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(unit)))));

/** Hostile text; runs up to `maxRunBytes` (keep it small where the text goes into a URL or a header). */
export const hostileText = (maxRunBytes = 200_000) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 64 }) },
    { weight: 2, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 64 }) },
    { weight: 2, arbitrary: troublesomeText },
    { weight: 1, arbitrary: longRun(maxRunBytes) },
  );

/** Mostly `valid`, sometimes `hostile`: so a good share of inputs is valid but for one field. */
export const usually = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: hostile });

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;

/** Every byte outside RFC 3986's unreserved set as %XX: arbitrary bytes, invalid UTF-8 included, survive a URL or a header. */
export const percentEncodeBytes = (bytes: Uint8Array): string =>
  Array.from(bytes, (byte) => {
    const char = String.fromCharCode(byte);
    return UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");

/** UTF-8 then percent-encoded, as clients send non-Latin-1 text (an unpaired surrogate becomes U+FFFD, as UTF-8 cannot hold it). */
export const percentEncode = (text: string): string => percentEncodeBytes(Buffer.from(text, "utf8"));

const ESCAPE_PIECES = ["%", "%2", "%zz", "%C3", "%C3%A9", "%ED%A0%80", "%00", "%0A", "%1B", "%7F", "%F0%9F%98%80", "%2F", "%25", "a", "+", " "];

/**
 * A percent-encoded value as it would travel in a header or a URL: encoded
 * text, encoded arbitrary bytes (overlong forms, surrogates, truncated
 * sequences) and broken escapes.
 */
export const percentEncodedValue = (maxRunBytes: number) =>
  fc.oneof(
    hostileText(maxRunBytes).map(percentEncode),
    fc.uint8Array({ maxLength: 48 }).map(percentEncodeBytes),
    fc.string({ unit: fc.constantFrom(...ESCAPE_PIECES), maxLength: 24 }),
  );

/** Characters a header value may carry on the wire as they are (HTAB, printable ASCII, Latin-1's upper half). */
const headerCharacter = fc
  .oneof(fc.constant(0x09), fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }))
  .map((code) => String.fromCharCode(code));

/** A header value as a client may send it: percent-encoded, or raw Latin-1 with stray '%'s. */
export const hostileHeaderValue = fc.oneof(percentEncodedValue(1_500), fc.string({ unit: headerCharacter, maxLength: 80 }));

// Failure reports show inputs this way: repetitions compressed, the rest cut short.
const REPETITION = /(.{1,8}?)\1{15,}/gsu;
const SHOWN_CHARACTERS = 1_500;

/** `text` made readable in a report: a unit of up to 8 characters repeated N times as «unit×N», and at most SHOWN_CHARACTERS of it. */
export function abbreviate(text: string): string {
  const compressed = text.replace(REPETITION, (repeated, unit: string) => `«${unit}×${repeated.length / unit.length}»`);
  return compressed.length <= SHOWN_CHARACTERS
    ? compressed
    : `${compressed.slice(0, SHOWN_CHARACTERS)}… (${compressed.length - SHOWN_CHARACTERS} more characters)`;
}
