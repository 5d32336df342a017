/** One CSV cell: text, a number, or nothing (an empty cell). */
export type CsvCell = string | number | null;

// A spreadsheet runs a cell that starts with one of these as a formula. Labels can come from an
// integration's end users (their ids), so text cells are defused with a leading apostrophe.
const FORMULA_START = /^[=+\-@\t\r]/;
// RFC 4180: a field holding a quote, comma or line break is quoted, its quotes doubled.
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

function cell(value: CsvCell): string {
  if (value === null) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Rows as RFC 4180 CSV: CRLF line ends, a final CRLF, quoting only where a field needs it. */
export function toCsv(rows: readonly (readonly CsvCell[])[]): string {
  return rows.map((row) => `${row.map(cell).join(",")}\r\n`).join("");
}
