import type ExcelJS from "exceljs";
import { capText, type ExtractedText } from "./extracted-text.js";
import type { ExtractionLimits } from "./limits.js";
import { damagedDocument } from "../invalid-file-format.js";
import { assertSafeZip } from "./zip-guard.js";

/** What a cell shows: a formula's cached result (nothing is recomputed), dates as ISO 8601. */
function cellText(value: ExcelJS.CellValue): string {
  if (value == null) return "";
  if (value instanceof Date) {
    const iso = value.toISOString();
    return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso; // a date without a time of day
  }
  if (typeof value !== "object") return String(value);
  if ("formula" in value || "sharedFormula" in value) return cellText(value.result);
  if ("richText" in value) return value.richText.map((run) => run.text).join("");
  if ("hyperlink" in value) return cellText(value.text);
  return value.error;
}

/** RFC 4180 quoting: only cells holding a comma, quote or line break are quoted. */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function rowLine(row: ExcelJS.Row): string {
  const fields: string[] = [];
  row.eachCell({ includeEmpty: true }, (cell, column) => {
    // A merged range's value belongs to its top-left cell only, as in Excel's own CSV export.
    fields[column - 1] = cell.isMerged && cell.master !== cell ? "" : csvField(cellText(cell.value));
  });
  return fields.join(",");
}

/** Every worksheet as "# Sheet: <name>" then its non-empty rows as CSV, sheets separated by blank lines. */
export async function extractXlsxText(path: string, limits: ExtractionLimits): Promise<ExtractedText> {
  await assertSafeZip(path, limits, "XLSX file");
  // Loaded on first use: most processes never read a spreadsheet, and it weighs ~25 MB resident.
  const { default: Excel } = await import("exceljs");
  const workbook = new Excel.Workbook();
  await workbook.xlsx.readFile(path).catch((e: unknown) => {
    throw damagedDocument("XLSX file", e);
  });
  // exceljs reads a zip without a workbook (a docx, say) as an empty one; Excel never writes a workbook without sheets.
  if (workbook.worksheets.length === 0) throw damagedDocument("XLSX file", "no worksheets");
  const lines: string[] = [];
  let chars = 0;
  for (const sheet of workbook.worksheets) {
    if (chars > limits.maxChars) break;
    if (lines.length > 0) lines.push("");
    lines.push(`# Sheet: ${sheet.name}`);
    sheet.eachRow((row) => {
      // eachRow cannot stop early; past the cap, rows are skipped, not formatted.
      if (chars > limits.maxChars) return;
      const line = rowLine(row);
      lines.push(line);
      chars += line.length + 1;
    });
  }
  return { ...capText(lines.join("\n"), limits.maxChars), sheets: workbook.worksheets.length };
}
