import fc from "fast-check";

// JSON text that JSON.stringify cannot write: number literals out of any
// range, and nesting thousands of levels deep (which JSON.stringify would
// recurse through, and which any recursive walk on the server may overflow on).

/** A piece of JSON text placed verbatim where a value goes. */
export class RawJson {
  constructor(readonly text: string) {}
}

// A private-use marker no generated string is expected to hold around digits.
const MARK = "\ue000\ue001";
const PLACEHOLDER = new RegExp(`"${MARK}(\\d+)${MARK}"`, "g");

/** `value` as JSON text, with every RawJson inside it written verbatim. */
export function jsonText(value: unknown): string {
  const fragments: string[] = [];
  const text = JSON.stringify(value, (_key, item: unknown) =>
    item instanceof RawJson ? `${MARK}${fragments.push(item.text) - 1}${MARK}` : item,
  );
  return (text ?? "").replace(PLACEHOLDER, (_match, index: string) => fragments[Number(index)]!);
}

/** Whether the server's JSON.parse would accept `text`. */
export function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const nest = (depth: number, kind: "array" | "object" | "mixed"): string => {
  const opening = { array: "[", object: '{"a":', mixed: '[{"a":' }[kind];
  const closing = { array: "]", object: "}", mixed: "}]" }[kind];
  return `${opening.repeat(depth)}"x"${closing.repeat(depth)}`;
};

/** A value nested 1 to 20,000 levels deep. */
export const deepNesting = fc
  .record({ depth: fc.integer({ min: 1, max: 20_000 }), kind: fc.constantFrom("array" as const, "object" as const, "mixed" as const) })
  .map(({ depth, kind }) => new RawJson(nest(depth, kind)));

const OUT_OF_RANGE_LITERALS = ["1e999", "-1e999", "1e-999", "-0", "123456789012345678901234567890", "0.30000000000000004", "1E400", "4.9e-324"];

/** Numbers at and beyond every range: NaN and ±Infinity (JSON null), extremes, and literals that overflow a double. */
export const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.constantFrom(0, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.constantFrom(...OUT_OF_RANGE_LITERALS).map((literal) => new RawJson(literal)),
);

/** JSON of a depth any client might send. */
export const shallowJson = fc.jsonValue({ maxDepth: 4 });

/** Anything JSON can hold, some of it deep or out of range. */
export const anyJson = fc.oneof({ weight: 4, arbitrary: fc.jsonValue() }, { weight: 1, arbitrary: deepNesting }, { weight: 1, arbitrary: hostileNumber });
